// Package schemas embeds the CUE schemas that every pipectl spec is unified
// with. The .cue files are the user-facing contract: pipelines, targets,
// stages and the typed parameters of each stage type.
package schemas
