# install() rules and the Debian package (CPack DEB):
#   cmake --build build --target package   ->  build/waverless_<version>_amd64.deb
# Layout under /usr: bin/waverless; share/waverless/ui (the console, found
# at <bin>/../share/waverless/ui), share/waverless/sdk (found by `waverless
# build` the same way), share/waverless/apps (the demo apps, prebuilt),
# lib/systemd/system (the units, deploy/systemd). docs/deploy.md.

set(WAVERLESS_VERSION "0.1.0" CACHE STRING "version of the installed package")

install(TARGETS waverless RUNTIME DESTINATION bin)

# The console is built by scripts/build.sh (npm + vite) after CMake: check
# at install time, so a package never ships without it by accident.
install(CODE "
  if(NOT EXISTS \"${CMAKE_BINARY_DIR}/ui/index.html\")
    message(FATAL_ERROR \"${CMAKE_BINARY_DIR}/ui/index.html is missing: run scripts/build.sh (it builds the console) before installing\")
  endif()")
install(DIRECTORY ${CMAKE_BINARY_DIR}/ui/ DESTINATION share/waverless/ui OPTIONAL)

install(DIRECTORY sdk/ DESTINATION share/waverless/sdk
        PATTERN node_modules EXCLUDE PATTERN target EXCLUDE)

# The demo apps as prebuilt modules (app.yaml, app.wasm, files/) and no
# sources, so the node deploys them without a wasm toolchain.
foreach(app hello word_count longchain)
  install(FILES apps/${app}/app.yaml ${CMAKE_BINARY_DIR}/apps/${app}/app.wasm
          DESTINATION share/waverless/apps/${app})
  if(IS_DIRECTORY ${CMAKE_SOURCE_DIR}/apps/${app}/files)
    install(DIRECTORY apps/${app}/files DESTINATION share/waverless/apps/${app})
  endif()
endforeach()

install(FILES deploy/systemd/waverless-node@.service deploy/systemd/waverless-dev.service
        DESTINATION lib/systemd/system)
install(FILES docs/deploy.md docs/cluster.md docs/limits.md deploy/cluster.yaml.example
        DESTINATION share/doc/waverless)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME waverless)
set(CPACK_PACKAGE_VERSION ${WAVERLESS_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_CONTACT "Waverless maintainers <waverless@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "serverless platform running WebAssembly functions next to a KV store")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # waverless_<version>_amd64.deb
set(CPACK_DEBIAN_PACKAGE_SECTION net)
# The shared libraries (gRPC, protobuf, raft, libuv, OpenSSL, absl, ...) come
# from dpkg-shlibdeps on the binary. What it cannot see is what a deploy runs:
# wasm2c (wabt, which also ships the wasm-rt.h the generated C includes) and a
# C compiler with libc headers for the AOT step; adduser for postinst.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "wabt (>= 1.0.32), gcc | c-compiler, libc6-dev, adduser")
# `waverless build` / `waverless new`: C and C++ guests (clang-14 for wasm32-wasi).
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "curl")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS
    "clang-14, lld-14, wasi-libc, libc++-14-dev-wasm32, libc++abi-14-dev-wasm32, libclang-rt-14-dev-wasm32")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/deploy/debian/postinst ${CMAKE_SOURCE_DIR}/deploy/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)
include(CPack)
