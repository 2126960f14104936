package dataset

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// ProgressBar returns a Progress callback that draws a one-line bar on w (a terminal), for
// the CLI: "[#########-----------]  45%  450000 行/rows  12 拒绝/rejected". Without a known
// size it shows rows and bytes only. Redraws are limited to five a second (the CLI prints the
// Result after the load anyway).
func ProgressBar(w io.Writer) func(Progress) {
	var last time.Time
	return func(p Progress) {
		now := time.Now()
		if now.Sub(last) < 200*time.Millisecond && (p.TotalBytes == 0 || p.Bytes < p.TotalBytes) {
			return
		}
		last = now
		const width = 30
		if p.TotalBytes > 0 {
			frac := min(float64(p.Bytes)/float64(p.TotalBytes), 1)
			n := int(frac * width)
			fmt.Fprintf(w, "\r[%s%s] %3.0f%%  %d 行/rows  %d 拒绝/rejected ", strings.Repeat("#", n), strings.Repeat("-", width-n), frac*100, p.Rows, p.Rejected)
			return
		}
		fmt.Fprintf(w, "\r%d 行/rows  %.1f MiB  %d 拒绝/rejected ", p.Rows, float64(p.Bytes)/(1<<20), p.Rejected)
	}
}
