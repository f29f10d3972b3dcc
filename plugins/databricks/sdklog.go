package databricks

import (
	"context"
	"fmt"
	"sync"

	"github.com/databricks/databricks-sdk-go/logger"
)

// The SDK logs through a global logger that prints warnings raw on
// stderr ("Failed to resolve host metadata: ..."). pipectl words failures
// itself; the SDK's warnings and errors go to the stage's log when a stage
// is running (sdkLogger in the context) and nowhere otherwise.
var quietSDK sync.Once

func silenceSDKLogger() {
	quietSDK.Do(func() { logger.DefaultLogger = sdkLogger{} })
}

// sdkLogger passes the SDK's warnings and errors to log (nil: drop them).
type sdkLogger struct {
	log func(string)
	red *redactor
}

func (l sdkLogger) Enabled(_ context.Context, level logger.Level) bool {
	return l.log != nil && level >= logger.LevelWarn
}

func (l sdkLogger) write(level, format string, v ...any) {
	if l.log != nil {
		l.log(l.red.String("databricks-sdk " + level + ": " + fmt.Sprintf(format, v...)))
	}
}

func (l sdkLogger) Tracef(context.Context, string, ...any) {}
func (l sdkLogger) Debugf(context.Context, string, ...any) {}
func (l sdkLogger) Infof(context.Context, string, ...any)  {}
func (l sdkLogger) Warnf(_ context.Context, format string, v ...any) {
	l.write("warning", format, v...)
}
func (l sdkLogger) Errorf(_ context.Context, format string, v ...any) {
	l.write("error", format, v...)
}

// withSDKLog routes the SDK's warnings during calls made with ctx to log.
func withSDKLog(ctx context.Context, c *Client, log func(string)) context.Context {
	return logger.NewContext(ctx, sdkLogger{log: log, red: c.red})
}
