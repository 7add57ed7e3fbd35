// Command berth_go_harness reads build contexts and Dockerfiles the way dockerd 20.10.24
// reads them and prints what it read, for berth's differential test
// (tests/differential/differential_main.cpp).
//
//   - A tar is read with Go's archive/tar ("direct"), and also written again with archive/tar
//     and read back ("view"), as dockerd's tarsum and Untar do; PAX global headers are skipped
//     as Untar skips them.
//   - A Dockerfile is parsed with the buildkit parser vendored in docker 20.10.24, imported
//     from the Debian source (fetch_moby_source.sh), never copied here.
//
// Input on stdin: records "<kind> <id> <length>\n" followed by <length> bytes, kind "tar"
// or "df". Output: one JSON line per record, {"id":..,"ok":..,"view":..}. Strings are written
// with bytes outside printable ASCII (and the backslash) as \xNN, so both sides compare bytes.
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// esc writes a byte string in printable ASCII.
func esc(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c <= 0x7e && c != '\\' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "\\x%02x", c)
		}
	}
	return b.String()
}

func escAll(ss []string) []string {
	out := []string{}
	for _, s := range ss {
		out = append(out, esc(s))
	}
	return out
}

// asciiOr names a non-ASCII value by a marker: Go lowercases it with Unicode tables berth
// does not carry (nothing non-ASCII is an instruction or a stage name berth accepts).
func asciiOr(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return "<non-ascii>"
		}
	}
	return esc(s)
}

type entry struct {
	Type   string `json:"type"`
	Name   string `json:"name"`
	Link   string `json:"link"`
	Size   int64  `json:"size"`
	Mode   int64  `json:"mode"`
	UID    int    `json:"uid"`
	GID    int    `json:"gid"`
	Mtime  int64  `json:"mtime"`
	SHA256 string `json:"sha256"`
}

// listTar lists the entries of a tar as Go's reader returns them (PAX global headers
// skipped, as Untar skips them).
func listTar(r io.Reader) ([]entry, error) {
	entries := []entry{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		h := sha256.New()
		if _, err := io.Copy(h, tr); err != nil {
			return nil, err
		}
		link := hdr.Linkname
		if hdr.Typeflag == tar.TypeLink {
			link = filepath.Clean(link)
		}
		entries = append(entries, entry{
			Type:   esc(string([]byte{hdr.Typeflag})),
			Name:   esc(filepath.Clean(hdr.Name)),
			Link:   esc(link),
			Size:   hdr.Size,
			Mode:   hdr.Mode & 07777,
			UID:    hdr.Uid,
			GID:    hdr.Gid,
			Mtime:  hdr.ModTime.Unix(),
			SHA256: hex.EncodeToString(h.Sum(nil)),
		})
	}
	return entries, nil
}

// reencode is tarsum: archive/tar read and written again, which is what Untar reads.
func reencode(data []byte) ([]byte, error) {
	var again bytes.Buffer
	tr := tar.NewReader(bytes.NewReader(data))
	tw := tar.NewWriter(&again)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return again.Bytes(), nil
}

// The classic builder's ONBUILD trigger (instructions.parseOnBuild), written out here.
var onbuildPrefix = regexp.MustCompile(`(?i)^\s*ONBUILD\s*`)

func nodeView(n *parser.Node, top bool) map[string]interface{} {
	v := map[string]interface{}{
		"cmd":      asciiOr(n.Value),
		"flags":    escAll(n.Flags),
		"json":     n.Attributes["json"],
		"original": esc(n.Original),
	}
	args := []string{}
	raw := []string{}
	for c := n.Next; c != nil; c = c.Next {
		if len(c.Children) > 0 {
			v["child"] = nodeView(c.Children[0], false)
		} else {
			args = append(args, esc(c.Value))
			raw = append(raw, c.Value)
		}
	}
	v["args"] = args
	if top && n.Value == "from" && len(raw) > 0 {
		v["base"] = esc(raw[0])
		if len(raw) == 3 && strings.EqualFold(raw[1], "as") {
			v["stage"] = asciiOr(raw[2])
			if v["stage"] != "<non-ascii>" {
				v["stage"] = esc(strings.ToLower(raw[2]))
			}
		}
	}
	if top && n.Value == "onbuild" {
		trigger := onbuildPrefix.ReplaceAllString(n.Original, "")
		v["trigger"] = esc(trigger)
		if res, err := parser.Parse(strings.NewReader(trigger)); err != nil {
			v["trigger_parse"] = "error"
		} else {
			list := []interface{}{}
			for _, c := range res.AST.Children {
				list = append(list, nodeView(c, false))
			}
			v["trigger_parse"] = list
		}
	}
	return v
}

func readDockerfile(data []byte) (interface{}, error) {
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	list := []interface{}{}
	for _, n := range res.AST.Children {
		list = append(list, nodeView(n, true))
	}
	return map[string]interface{}{"escape": string(res.EscapeToken), "instructions": list}, nil
}

func main() {
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	for {
		var kind string
		var id, length int
		if _, err := fmt.Fscanf(in, "%s %d %d\n", &kind, &id, &length); err != nil {
			if err == io.EOF {
				return
			}
			fmt.Fprintln(os.Stderr, "berth_go_harness: bad record header:", err)
			os.Exit(2)
		}
		data := make([]byte, length)
		if _, err := io.ReadFull(in, data); err != nil {
			fmt.Fprintln(os.Stderr, "berth_go_harness: short record:", err)
			os.Exit(2)
		}
		result := map[string]interface{}{"id": id}
		var view interface{}
		var err error
		switch kind {
		case "tar":
			// "direct": archive/tar's reading; "view": what Untar reads after tarsum.
			if direct, derr := listTar(bytes.NewReader(data)); derr != nil {
				result["direct_ok"] = false
				result["direct_error"] = esc(derr.Error())
			} else {
				result["direct_ok"] = true
				result["direct"] = direct
			}
			var again []byte
			if again, err = reencode(data); err == nil {
				view, err = listTar(bytes.NewReader(again))
			}
		case "df":
			view, err = readDockerfile(data)
		default:
			fmt.Fprintln(os.Stderr, "berth_go_harness: unknown kind", kind)
			os.Exit(2)
		}
		if err != nil {
			result["ok"] = false
			result["error"] = esc(err.Error())
		} else {
			result["ok"] = true
			result["view"] = view
		}
		if err := enc.Encode(result); err != nil {
			fmt.Fprintln(os.Stderr, "berth_go_harness:", err)
			os.Exit(2)
		}
	}
}
