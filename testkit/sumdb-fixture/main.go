// Command sumdb-fixture is a checksum database for Ferry's tests: it serves a signed tree (the go.sum
// lines of the modules of a GOPROXY directory tree) over HTTP on 127.0.0.1, with the real server code of
// golang.org/x/mod/sumdb, so the real go command can verify modules against it.
//
// It prints "sumdb fixture ready addr=IP:PORT key=VERIFIERKEY" on stderr once it listens (the key is what
// GOSUMDB takes), then one "sumdb fixture request PATH" line per request. With -tls FILE it serves HTTPS
// with a certificate for 127.0.0.1 from a CA made for the run, whose certificate it writes to FILE (PEM).
// With -tile-delay D each tile request waits D before it is answered (a database further away).
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/sumdb/note"
)

// fillerPath names the made-up records -fill adds, so that the tree has full tiles.
const fillerPath = "filler.example/records"

func main() {
	name := flag.String("name", "sum.fixture.example", "the database's name (the key's name)")
	tree := flag.String("tree", "", "a GOPROXY directory tree whose modules the database knows")
	fill := flag.Int("fill", 0, "made-up records to add first (256 make the first tiles full)")
	caFile := flag.String("tls", "", "serve HTTPS, and write the certificate of the CA that signed its certificate here")
	tileDelay := flag.Duration("tile-delay", 0, "how long each tile request waits before it is answered")
	flag.Parse()
	if *tree == "" {
		log.Fatal("sumdb fixture: -tree is required")
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, *name)
	if err != nil {
		log.Fatalf("sumdb fixture: %v", err)
	}
	ops := sumdb.NewTestServer(skey, func(path, version string) ([]byte, error) {
		return goSum(*tree, path, version)
	})
	for i := 0; i < *fill; i++ {
		filler := module.Version{Path: fillerPath, Version: fmt.Sprintf("v0.0.%d", i)}
		if _, err := ops.Lookup(context.Background(), filler); err != nil {
			log.Fatalf("sumdb fixture: filler record %d: %v", i, err)
		}
	}
	server := sumdb.NewServer(ops)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(os.Stderr, "sumdb fixture request %s\n", r.URL.Path)
		if strings.HasPrefix(r.URL.Path, "/tile/") {
			time.Sleep(*tileDelay)
		}
		server.ServeHTTP(w, r)
	})
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatalf("sumdb fixture: %v", err)
	}
	if *caFile != "" {
		certificate, err := certificateFor127(*caFile)
		if err != nil {
			log.Fatalf("sumdb fixture: %v", err)
		}
		listener = tls.NewListener(listener, &tls.Config{Certificates: []tls.Certificate{certificate}})
	}
	fmt.Fprintf(os.Stderr, "sumdb fixture ready addr=%s key=%s\n", listener.Addr(), vkey)
	log.Fatal(http.Serve(listener, handler))
}

// certificateFor127 makes a CA, writes its certificate to caFile, and returns a server certificate for
// 127.0.0.1 that it signed.
func certificateFor127(caFile string) (tls.Certificate, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sumdb fixture CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		return tls.Certificate{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key}, nil
}

// goSum gives the go.sum lines of path@version, hashed from the tree's .zip and .mod as the go command
// hashes them; a version the tree does not hold is not found (404).
func goSum(tree, path, version string) ([]byte, error) {
	if path == fillerPath {
		hash := "h1:" + strings.Repeat("A", 43) + "="
		return []byte(fmt.Sprintf("%s %s %s\n%s %s/go.mod %s\n", path, version, hash, path, version, hash)), nil
	}
	escapedPath, err := module.EscapePath(path)
	if err != nil {
		return nil, err
	}
	escapedVersion, err := module.EscapeVersion(version)
	if err != nil {
		return nil, err
	}
	base := filepath.Join(tree, filepath.FromSlash(escapedPath), "@v", escapedVersion)
	zipHash, err := dirhash.HashZip(base+".zip", dirhash.Hash1)
	if err != nil {
		return nil, err
	}
	modHash, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return os.Open(base + ".mod")
	})
	if err != nil {
		return nil, err
	}
	return []byte(fmt.Sprintf("%s %s %s\n%s %s/go.mod %s\n", path, version, zipHash, path, version, modHash)), nil
}
