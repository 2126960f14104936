package web

import "io/fs"

func fsRead(r *Renderer, name string) ([]byte, error) { return fs.ReadFile(r.StaticFS(), name) }
