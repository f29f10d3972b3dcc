module github.com/pipectl/pipectl

go 1.26
