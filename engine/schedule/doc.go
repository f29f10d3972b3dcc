// Package schedule parses a pipeline's one canonical schedule — a 5-field
// POSIX cron expression in UTC, as GitHub Actions takes it — and renders it
// as a Databricks (Quartz) cron expression with its timezone.
package schedule
