# Builds guest code (C or C++) into a wasm32-wasi reactor module with Debian's
# clang-14, wasi-libc and the Waverless SDK.
#
#   waverless_guest(<target> OUTPUT <file.wasm> SOURCES <src>... [CXX])
find_program(WASM_CLANG NAMES clang-14 clang REQUIRED)
find_program(WASM_CLANGXX NAMES clang++-14 clang++ REQUIRED)
set(WAVERLESS_SDK_DIR ${CMAKE_CURRENT_LIST_DIR}/../sdk)

function(waverless_guest target)
  cmake_parse_arguments(G "CXX" "OUTPUT" "SOURCES;FLAGS" ${ARGN})
  if(G_CXX)
    set(cc ${WASM_CLANGXX})
    set(lang_flags -fno-exceptions -fno-rtti -std=c++20)
    # wl_sdk.c is valid C++; say so, rather than have clang++ warn about it.
    set(sdk_lang -x c++)
  else()
    set(cc ${WASM_CLANG})
    set(lang_flags -std=c11)
    set(sdk_lang)
  endif()
  set(srcs)
  foreach(s ${G_SOURCES})
    get_filename_component(abs ${s} ABSOLUTE)
    list(APPEND srcs ${abs})
  endforeach()
  get_filename_component(outdir ${G_OUTPUT} DIRECTORY)
  file(MAKE_DIRECTORY ${outdir})
  # -unroll-threshold: see src/toolchain/guest_builder.cpp (same flags).
  add_custom_command(
    OUTPUT ${G_OUTPUT}
    COMMAND ${cc} --target=wasm32-wasi -O2 -mllvm -unroll-threshold=5000
            -mexec-model=reactor ${lang_flags}
            -I${WAVERLESS_SDK_DIR}/include ${G_FLAGS}
            ${srcs} ${sdk_lang} ${WAVERLESS_SDK_DIR}/src/wl_sdk.c -o ${G_OUTPUT}
    DEPENDS ${srcs} ${WAVERLESS_SDK_DIR}/src/wl_sdk.c
            ${WAVERLESS_SDK_DIR}/include/waverless.h
            ${WAVERLESS_SDK_DIR}/include/waverless.hpp
    COMMENT "guest ${target} -> wasm32-wasi"
    VERBATIM)
  add_custom_target(${target} ALL DEPENDS ${G_OUTPUT})
endfunction()
