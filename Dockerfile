# The iqengine binary in an image of its own, for deploy/kubernetes:
#
#   docker build -t registry.example.com/iqengine:TAG .
#
# Built without cgo, so the binary is static and needs no libc; it runs as
# the distroless base's non-root user (65532, which the StatefulSet's
# securityContext names too) in an image that holds nothing else.

FROM golang:1.26 AS build
WORKDIR /src
# The modules first, so that a change to the code alone reuses this layer.
# The plugin SDK is a module of its own that go.mod replaces with ./sdk/go.
COPY go.mod go.sum ./
COPY sdk/go/go.mod sdk/go/
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/iqengine ./cmd/iqengine

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/iqengine /iqengine
USER 65532:65532
EXPOSE 7070
ENTRYPOINT ["/iqengine"]
