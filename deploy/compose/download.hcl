# The download policy of the compose setup (mounted at /etc/ferry/download.hcl and selected with
# FERRY_DOWNLOAD_MODE=file:/etc/ferry/download.hcl). Edit it, then `docker compose kill -s HUP ferry` to
# reload it without a restart. The format is Athens's download file; see docs/download-modes.md.

# Fetch every module on a miss and answer once it is stored.
mode = "sync"

# Never fetch anything under this pattern: only what is already in the bucket is served.
download "internal.example/frozen/*" {
    mode = "none"
}
