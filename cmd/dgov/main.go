// Command dgov is the digital-government platform's only binary: `dgov help` lists its commands.
package main

import (
	"os"

	"github.com/dgov/dgov/internal/app"
)

func main() { os.Exit(app.Main(os.Args[1:])) }
