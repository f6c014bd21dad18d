// Command tlogdb serves a real Go checksum database, built with golang.org/x/mod/sumdb, for the tests of
// ferry-sumdb. Its records are the go.sum lines of the modules in a GOPROXY tree, hashed with
// golang.org/x/mod/sumdb/dirhash exactly as the go command hashes them, so the Rust tests check both the
// client and Ferry's own dirhash against Go's.
//
// It listens on 127.0.0.1:0, prints "addr HOST:PORT" and "key VERIFIERKEY", and exits when its standard
// input closes (the test holds it open). Tamper modes make it misbehave the ways a hostile database can.
// With -match it instead answers module.MatchPrefixPatterns for "globs<TAB>target" lines on standard input.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

var (
	modulesDir = flag.String("modules", "", "GOPROXY tree whose module versions become the records")
	limit      = flag.Int("limit", 0, "keep only the first N records (0: all), so two servers can be one log at two sizes")
	seed       = flag.String("seed", "ferry", "the signing key is derived from this (same seed, same key)")
	name       = flag.String("name", "sumdb.ferry.test", "the database name")
	tamper     = flag.String("tamper", "", "record | forge | tile | partial-tile | short-tile | key | signature | fork")
	match      = flag.Bool("match", false, "answer MatchPrefixPatterns for globs<TAB>target lines on stdin")
)

func main() {
	flag.Parse()
	if *match {
		matchLines()
		return
	}
	records, ids := readRecords(*modulesDir)
	if *limit > 0 && *limit < len(records) {
		records = records[:*limit]
	}
	if *tamper == "fork" && len(records) > 1 {
		// Another history: record 1 says something else, so every tree holding it has another hash.
		records[1] = bytes.Replace(records[1], []byte(" h1:"), []byte(" h1:forked"), 1)
	}
	db := newDB(records, ids)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("addr %s\nkey %s\n", ln.Addr(), db.vkey)
	os.Stdout.Sync()
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	log.Fatal(http.Serve(ln, sumdb.NewServer(db)))
}

// readRecords walks a GOPROXY tree: one record per <path>/@v/<version>.zip, in order of path then version.
func readRecords(root string) ([][]byte, map[module.Version]int64) {
	type version struct {
		mod module.Version
		dir string
	}
	var versions []version
	err := filepath.WalkDir(root, func(file string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(file, ".zip") {
			return err
		}
		rel, _ := filepath.Rel(root, file)
		escPath, escVers, _ := strings.Cut(filepath.ToSlash(rel), "/@v/")
		path, err1 := module.UnescapePath(escPath)
		vers, err2 := module.UnescapeVersion(strings.TrimSuffix(escVers, ".zip"))
		if err1 != nil || err2 != nil {
			return fmt.Errorf("%s: %v %v", file, err1, err2)
		}
		versions = append(versions, version{module.Version{Path: path, Version: vers}, filepath.Dir(file)})
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	sort.Slice(versions, func(i, j int) bool {
		a, b := versions[i].mod, versions[j].mod
		return a.Path < b.Path || a.Path == b.Path && a.Version < b.Version
	})
	var records [][]byte
	ids := make(map[module.Version]int64)
	for _, v := range versions {
		escVers, _ := module.EscapeVersion(v.mod.Version)
		zipHash, err := dirhash.HashZip(filepath.Join(v.dir, escVers+".zip"), dirhash.Hash1)
		if err != nil {
			log.Fatal(err)
		}
		goMod, err := os.ReadFile(filepath.Join(v.dir, escVers+".mod"))
		if err != nil {
			log.Fatal(err)
		}
		// The go command's goModSum: Hash1 over the one file "go.mod".
		modHash, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(goMod)), nil
		})
		if err != nil {
			log.Fatal(err)
		}
		ids[v.mod] = int64(len(records))
		records = append(records, fmt.Appendf(nil, "%s %s %s\n%s %s/go.mod %s\n",
			v.mod.Path, v.mod.Version, zipHash, v.mod.Path, v.mod.Version, modHash))
	}
	return records, ids
}

// db is a sumdb.ServerOps over a fixed log.
type db struct {
	records [][]byte
	ids     map[module.Version]int64
	hashes  []tlog.Hash
	signed  []byte
	vkey    string
}

func (d *db) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(d.hashes)) {
			return nil, fmt.Errorf("hash %d not stored", x)
		}
		out[i] = d.hashes[x]
	}
	return out, nil
}

func keyFor(seed string) ed25519.PrivateKey {
	s := sha256.Sum256([]byte(seed))
	return ed25519.NewKeyFromSeed(s[:])
}

func newDB(records [][]byte, ids map[module.Version]int64) *db {
	d := &db{records: records, ids: ids}
	for i, rec := range records {
		hs, err := tlog.StoredHashes(int64(i), rec, d)
		if err != nil {
			log.Fatal(err)
		}
		d.hashes = append(d.hashes, hs...)
	}
	n := int64(len(records))
	th, err := tlog.TreeHash(n, d)
	if err != nil {
		log.Fatal(err)
	}

	priv := keyFor(*seed)
	vkey, err := note.NewEd25519VerifierKey(*name, priv.Public().(ed25519.PublicKey))
	if err != nil {
		log.Fatal(err)
	}
	d.vkey = vkey
	signingKey := priv
	if *tamper == "key" {
		signingKey = keyFor(*seed + "-another-key")
	}
	skey, err := signerKey(*name, signingKey)
	if err != nil {
		log.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		log.Fatal(err)
	}
	d.signed, err = note.Sign(&note.Note{Text: string(tlog.FormatTree(tlog.Tree{N: n, Hash: th}))}, signer)
	if err != nil {
		log.Fatal(err)
	}
	if *tamper == "signature" {
		// Flip one bit of the signature, keeping the key name and hash: a forged note.
		lines := bytes.Split(bytes.TrimSuffix(d.signed, []byte("\n")), []byte("\n"))
		last := lines[len(lines)-1]
		last[len(last)-3] ^= 1
		d.signed = append(bytes.Join(lines, []byte("\n")), '\n')
	}
	return d
}

// signerKey writes a private key in note.NewSigner's format.
func signerKey(name string, priv ed25519.PrivateKey) (string, error) {
	vkey, err := note.NewEd25519VerifierKey(name, priv.Public().(ed25519.PublicKey))
	if err != nil {
		return "", err
	}
	parts := strings.Split(vkey, "+")
	seed := append([]byte{1}, priv.Seed()...)
	return fmt.Sprintf("PRIVATE+KEY+%s+%s+%s", name, parts[1], encode(seed)), nil
}

func (d *db) Signed(ctx context.Context) ([]byte, error) { return d.signed, nil }

func (d *db) ReadRecords(ctx context.Context, id, n int64) ([][]byte, error) {
	if id < 0 || n < 0 || id+n > int64(len(d.records)) {
		return nil, os.ErrNotExist
	}
	out := make([][]byte, n)
	for i := range out {
		out[i] = d.records[id+int64(i)]
		if *tamper == "record" || *tamper == "forge" {
			// The record served is not the one logged: another zip hash.
			out[i] = forged(out[i])
		}
	}
	return out, nil
}

func forged(record []byte) []byte {
	return bytes.Replace(record, []byte(" h1:"), []byte(" h1:tampered"), 1)
}

func (d *db) Lookup(ctx context.Context, m module.Version) (int64, error) {
	id, ok := d.ids[m]
	if !ok || id >= int64(len(d.records)) {
		return 0, os.ErrNotExist
	}
	return id, nil
}

func (d *db) ReadTileData(ctx context.Context, t tlog.Tile) ([]byte, error) {
	// A tile exists once the tree has every hash it holds.
	if t.L < 0 || (t.N<<uint(t.H))+int64(t.W) > int64(len(d.records))>>uint(t.L*t.H) {
		return nil, os.ErrNotExist
	}
	data, err := tlog.ReadTileData(t, d)
	if err != nil {
		return nil, err
	}
	if *tamper == "forge" && t.L == 0 && t.W == 1<<uint(t.H) {
		// A forger's full tiles: each leaf is the hash of the forged record, so record and leaf agree and
		// only the check of the tile against its parent (and so the signed tree) can catch it.
		for i := 0; i < t.W; i++ {
			leaf := tlog.RecordHash(forged(d.records[t.N<<uint(t.H)+int64(i)]))
			copy(data[i*tlog.HashSize:], leaf[:])
		}
	}
	if *tamper == "short-tile" {
		data = data[:len(data)-1]
	}
	// Every hash of the level-0 tiles of one kind is altered: full tiles (checked against their parent
	// tile) or partial ones (checked against the signed tree hash).
	full := t.W == 1<<uint(t.H)
	if t.L == 0 && (*tamper == "tile" && full || *tamper == "partial-tile" && !full) {
		for i := 0; i < len(data); i += tlog.HashSize {
			data[i] ^= 1
		}
	}
	return data, nil
}

func matchLines() {
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		globs, target, _ := strings.Cut(in.Text(), "\t")
		fmt.Println(module.MatchPrefixPatterns(globs, target))
	}
}

func encode(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
