// `waverless completion bash`: a completion script for bash. App names come
// from the node (`waverless apps --output name`, with the line's --to and
// token flags), template names from `waverless new --list`.
#include <cstdio>

#include "cli/cli_common.h"

namespace waverless::cli {

namespace {

constexpr const char* kBash =
    R"BASH(# bash completion for waverless; load with: source <(waverless completion bash)
_waverless() {
  local cur prev cmd i
  cur="${COMP_WORDS[COMP_CWORD]}"
  prev="${COMP_WORDS[COMP_CWORD-1]}"
  local commands="dev node new build deploy invoke load apps logs status delete key completion help"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "$commands" -- "$cur"))
    return
  fi
  cmd="${COMP_WORDS[1]}"
  local client="--to --insecure --ca --token-file --data"
  case "$prev" in
    --output|-o) COMPREPLY=($(compgen -W "table json name" -- "$cur")); return ;;
    --arrival) COMPREPLY=($(compgen -W "poisson constant burst" -- "$cur")); return ;;
    --data|--apps|--cache|--token-file|--tls-cert|--tls-key|--ca|--config|--trace)
      COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
  if [[ "$cur" == --* ]]; then
    local flags=""
    case "$cmd" in
      dev) flags="--addr --data --apps --fsync --max-body --cache --http-threads --workers --token-file --tls-cert --tls-key --metrics-addr --memory-budget" ;;
      node) flags="--config --id --data --apps --cache --max-body --token-file --tls-cert --tls-key --metrics-addr --memory-budget" ;;
      new) flags="--name --list" ;;
      deploy) flags="--name $client" ;;
      invoke) flags="--data --key --to --insecure --ca" ;;
      load) flags="--rate --duration --arrival --trace --burst --period-ms --connections --data --method --key --output --to" ;;
      apps|status) flags="--output $client" ;;
      logs) flags="--limit --follow --output $client" ;;
      delete|key) flags="$client" ;;
    esac
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    return
  fi
  # Which positional argument is being completed (flags and their values
  # skipped); flags that reach the node go along when asking it for app names.
  local npos=0 pass=()
  for ((i = 2; i < COMP_CWORD; i++)); do
    case "${COMP_WORDS[i]}" in
      --insecure) pass+=(--insecure) ;;
      --follow|--fsync|--list|-f) ;;
      --to|--token-file|--data|--ca) pass+=("${COMP_WORDS[i]}" "${COMP_WORDS[i+1]}"); ((i++)) ;;
      --*|-o) ((i++)) ;;
      *) ((npos++)) ;;
    esac
  done
  case "$cmd" in
    invoke|load|logs|delete|key)
      if [ "$npos" -eq 0 ]; then
        COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" apps --output name "${pass[@]}" 2>/dev/null)" -- "$cur"))
      fi ;;
    new)
      if [ "$npos" -eq 0 ]; then
        COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" new --list 2>/dev/null)" -- "$cur"))
      else
        COMPREPLY=($(compgen -d -- "$cur"))
      fi ;;
    build|deploy) COMPREPLY=($(compgen -d -- "$cur")) ;;
    completion) COMPREPLY=($(compgen -W "bash" -- "$cur")) ;;
  esac
}
complete -F _waverless waverless
)BASH";

}  // namespace

int runCompletion(const Args& a) {
  std::string shell = a.positional.size() > 1 ? a.positional[1] : "";
  if (shell != "bash") {
    return usageError(shell.empty() ? "completion SHELL (bash)"
                                    : "no completion for '" + shell + "'; there is bash");
  }
  fputs(kBash, stdout);
  return 0;
}

}  // namespace waverless::cli
