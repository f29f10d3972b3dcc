//go:build unix

package main

import "golang.org/x/sys/unix"

// termWidth returns the terminal's width in columns, or 100.
func termWidth(fd uintptr) int {
	ws, err := unix.IoctlGetWinsize(int(fd), unix.TIOCGWINSZ)
	if err != nil || ws.Col == 0 {
		return 100
	}
	return int(ws.Col)
}
