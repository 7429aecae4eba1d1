# Shared helpers for hack/ scripts. Source it.

# ensure_go puts the Go toolchain on PATH (a fresh Debian machine has it in /usr/local/go) and checks the
# version go.mod needs.
ensure_go() {
  if ! command -v go >/dev/null 2>&1; then
    for d in /usr/local/go/bin "$HOME/go/bin" /usr/lib/go/bin; do
      [ -x "$d/go" ] && export PATH="$d:$PATH" && break
    done
  fi
  command -v go >/dev/null 2>&1 || { echo "Go is not installed: install Go 1.26 (https://go.dev/dl) into /usr/local/go" >&2; exit 1; }
  local want have
  want=$(sed -n 's/^go \([0-9.]*\)$/\1/p' go.mod)
  have=$(go env GOVERSION | sed 's/^go//')
  if [ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -n1)" != "$want" ]; then
    echo "Go $have is older than the $want that go.mod needs" >&2
    exit 1
  fi
  export PATH="$(go env GOPATH)/bin:$PATH"
}
