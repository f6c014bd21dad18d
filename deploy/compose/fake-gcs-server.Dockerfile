# The GCS emulator of the compose file's `gcs` profile: fake-gcs-server with the XML-API writes that
# object_store's GCS client uses (scripts/fake-gcs-server/, the same additions the tests build; the stock
# image does not take those uploads). Built from the repository root by compose.
ARG GO_VERSION=1.26
FROM golang:${GO_VERSION}-trixie AS build
# The version scripts/test-servers.sh builds (the tests check that the two agree).
ARG FAKE_GCS_SERVER_VERSION=v1.56.1
COPY scripts/fake-gcs-server/ /additions/
WORKDIR /build
RUN source=$(go mod download -json "github.com/fsouza/fake-gcs-server@${FAKE_GCS_SERVER_VERSION}" \
        | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p') \
 && cp -R "$source/." . && chmod -R u+w . \
 && cp /additions/xml_writes.go fakestorage/ \
 && git apply /additions/register-xml-writes.patch \
 && CGO_ENABLED=0 go build -o /out/fake-gcs-server .

# busybox: a static binary needs nothing else, and busybox's wget serves the health check.
FROM busybox:1.37
COPY --from=build /out/fake-gcs-server /bin/fake-gcs-server
ENTRYPOINT ["/bin/fake-gcs-server"]
