// verify-estargz opens an eStargz blob with the reference reader
// (github.com/containerd/stargz-snapshotter/estargz), verifies the TOC against the given
// digest and every chunk against its chunkDigest, and prints every file of the layer as JSON
// lines so the lazyctl test suite can compare them with what it put in.
//
// Usage: verify-estargz BLOB TOC_DIGEST
package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"sort"

	"github.com/containerd/stargz-snapshotter/estargz"
	digest "github.com/opencontainers/go-digest"
)

type file struct {
	Path      string            `json:"path"`
	Type      string            `json:"type"`
	Size      int64             `json:"size"`
	Sha256    string            `json:"sha256,omitempty"`
	Mode      int64             `json:"mode"`
	UID       int               `json:"uid"`
	GID       int               `json:"gid"`
	UserName  string            `json:"userName"`
	GroupName string            `json:"groupName"`
	LinkName  string            `json:"linkName,omitempty"`
	DevMajor  int               `json:"devMajor,omitempty"`
	DevMinor  int               `json:"devMinor,omitempty"`
	ModTime   int64             `json:"modtime"`
	Xattrs    map[string]string `json:"xattrs,omitempty"`
	NumLink   int               `json:"numLink"`
	Chunks    int               `json:"chunks"`
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "verify-estargz: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 3 {
		fail("usage: verify-estargz BLOB TOC_DIGEST")
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fail("%v", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		fail("%v", err)
	}
	r, err := estargz.Open(io.NewSectionReader(f, 0, st.Size()))
	if err != nil {
		fail("open: %v", err)
	}
	want, err := digest.Parse(os.Args[2])
	if err != nil {
		fail("bad digest: %v", err)
	}
	verifiers, err := r.VerifyTOC(want)
	if err != nil {
		fail("verify TOC: %v", err)
	}
	root, ok := r.Lookup("")
	if !ok {
		fail("no root")
	}
	enc := json.NewEncoder(os.Stdout)
	var walk func(dir string, e *estargz.TOCEntry)
	walk = func(p string, e *estargz.TOCEntry) {
		out := file{Path: p, Type: e.Type, Size: e.Size, Mode: e.Mode, UID: e.UID, GID: e.GID, UserName: e.Uname, GroupName: e.Gname,
			LinkName: e.LinkName, DevMajor: e.DevMajor, DevMinor: e.DevMinor, ModTime: e.ModTime().Unix(), NumLink: e.NumLink}
		if len(e.Xattrs) > 0 {
			out.Xattrs = map[string]string{}
			for k, v := range e.Xattrs {
				out.Xattrs[k] = base64.StdEncoding.EncodeToString(v)
			}
		}
		if e.Type == "reg" && e.Size > 0 {
			sr, err := r.OpenFile(p)
			if err != nil {
				fail("open %s: %v", p, err)
			}
			whole := sha256.New()
			for off := int64(0); off < e.Size; {
				ce, ok := r.ChunkEntryForOffset(p, off)
				if !ok {
					fail("%s: no chunk at %d", p, off)
				}
				v, err := verifiers.Verifier(ce)
				if err != nil {
					fail("%s: %v", p, err)
				}
				size := ce.ChunkSize
				if size == 0 || ce.ChunkOffset+size > e.Size {
					size = e.Size - ce.ChunkOffset
				}
				buf := make([]byte, size)
				if _, err := sr.ReadAt(buf, ce.ChunkOffset); err != nil && err != io.EOF {
					fail("%s: read chunk at %d: %v", p, ce.ChunkOffset, err)
				}
				v.Write(buf)
				if !v.Verified() {
					fail("%s: chunk at %d does not match its chunkDigest", p, ce.ChunkOffset)
				}
				whole.Write(buf)
				out.Chunks++
				off = ce.ChunkOffset + size
			}
			out.Sha256 = "sha256:" + hex.EncodeToString(whole.Sum(nil))
			if e.Digest != "" && e.Digest != out.Sha256 {
				fail("%s: content %s does not match digest %s", p, out.Sha256, e.Digest)
			}
		}
		if err := enc.Encode(out); err != nil {
			fail("%v", err)
		}
		var names []string
		children := map[string]*estargz.TOCEntry{}
		e.ForeachChild(func(name string, c *estargz.TOCEntry) bool {
			names = append(names, name)
			children[name] = c
			return true
		})
		sort.Strings(names)
		for _, name := range names {
			walk(path.Join(p, name), children[name])
		}
	}
	walk("", root)
}
