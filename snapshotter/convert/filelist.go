package convert

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"strings"
)

// ParseFileList reads a prioritized-file list: one path in the image per line, in the order a container reads
// them at start-up. Blank lines and lines starting with '#' are ignored; surrounding spaces are trimmed. Paths
// are made absolute and cleaned; a path that climbs out of the root ("..") or repeats is an error.
func ParseFileList(r io.Reader) ([]string, error) {
	var files []string
	seen := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		if strings.ContainsRune(s, 0) {
			return nil, fmt.Errorf("line %d: NUL byte in path", line)
		}
		p := path.Clean("/" + s)
		if p == "/" {
			return nil, fmt.Errorf("line %d: %q is the root, not a file", line, s)
		}
		for _, part := range strings.Split(s, "/") {
			if part == ".." {
				return nil, fmt.Errorf("line %d: %q: '..' is not allowed", line, s)
			}
		}
		if prev, ok := seen[p]; ok {
			return nil, fmt.Errorf("line %d: %s already listed on line %d", line, p, prev)
		}
		seen[p] = line
		files = append(files, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading file list: %w", err)
	}
	return files, nil
}
