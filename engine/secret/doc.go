// Package secret is the one rule for "this looks like a credential": a
// parameter whose name says so (password, secret, api_key, ..._token) or
// whose value has the shape of a known token (a Databricks dapi… token, a
// GitHub or AWS key, a private key block).
//
// validate warns where a spec holds one; plan, plan --json, plan --explain
// and run records show [Mask] in its place. The notebook still receives
// the value: masking is for what people and files see.
package secret
