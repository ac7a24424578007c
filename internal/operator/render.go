package operator

import (
	"strings"
	"unicode/utf8"
)

// table renders rows in aligned columns separated by two spaces, the way people read them in a
// terminal; cells wider than maxCell are cut with "…".
type table struct {
	header []string
	rows   [][]string
}

const maxCell = 48

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) String() string {
	width := make([]int, len(t.header))
	all := append([][]string{t.header}, t.rows...)
	for _, row := range all {
		for i, c := range row {
			if i < len(width) {
				width[i] = max(width[i], utf8.RuneCountInString(cut(c)))
			}
		}
	}
	var b strings.Builder
	for _, row := range all {
		var line strings.Builder
		for i, c := range row {
			if i >= len(width) {
				break
			}
			c = cut(c)
			line.WriteString(c)
			if i < len(width)-1 {
				line.WriteString(strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)+2))
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " "))
		b.WriteByte('\n')
	}
	return b.String()
}

func cut(s string) string {
	if utf8.RuneCountInString(s) <= maxCell {
		return s
	}
	r := []rune(s)
	return string(r[:maxCell-1]) + "…"
}
