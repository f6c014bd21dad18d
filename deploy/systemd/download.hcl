# /etc/ferry/download.hcl: the download policy (Athens's download file format; see docs/download-modes.md).
# `systemctl reload ferry` loads a changed file; `ferry policy validate /etc/ferry/download.hcl` checks it
# first.

# Fetch every module on a miss and answer once it is stored.
mode = "sync"

# Modules under this pattern are served only from the store, never fetched.
download "internal.example/frozen/*" {
    mode = "none"
}
