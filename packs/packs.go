// Package packs embeds dgov's declarative content packs. A pack is data, not code: service
// items, bundles, forms and (later) routing rules and dashboards, loaded by the engines that
// own them (govservice.LoadPack for service items and bundles).
package packs

import (
	"embed"
	"io/fs"
)

// FS holds every pack, each in its own directory (shanxi/ …).
//
//go:embed shanxi
var FS embed.FS

// Shanxi is the Shanxi province pack: FS below shanxi/.
func Shanxi() fs.FS {
	sub, err := fs.Sub(FS, "shanxi")
	if err != nil {
		panic(err) // cannot happen: the directory is embedded
	}
	return sub
}
