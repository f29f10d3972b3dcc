// Command pipectl validates, plans and runs ML pipelines described as CUE
// specs, locally or on Databricks. See README.md.
package main

import "os"

func main() { os.Exit(run(os.Args[1:])) }
