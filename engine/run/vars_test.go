package run

import "sync/atomic"

var writes atomic.Int64
