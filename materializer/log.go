package materializer

import (
	"fmt"
	"strings"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
)

// badgerLogger adapts zerolog to Badger's logger; Badger's INFO chatter is
// logged at debug level.
type badgerLogger struct{ log zerolog.Logger }

func (l badgerLogger) Errorf(f string, a ...any) {
	l.log.Error().Msg(strings.TrimSpace(fmt.Sprintf(f, a...)))
}
func (l badgerLogger) Warningf(f string, a ...any) {
	l.log.Warn().Msg(strings.TrimSpace(fmt.Sprintf(f, a...)))
}
func (l badgerLogger) Infof(f string, a ...any) {
	l.log.Debug().Msg(strings.TrimSpace(fmt.Sprintf(f, a...)))
}
func (l badgerLogger) Debugf(f string, a ...any) {
	l.log.Trace().Msg(strings.TrimSpace(fmt.Sprintf(f, a...)))
}

// KgoLogger adapts zerolog to franz-go's logger interface. franz-go's info
// messages go to debug: they are per-connection chatter.
func KgoLogger(log zerolog.Logger) kgo.Logger { return kgoLog{log} }

func kgoLogger(log zerolog.Logger) kgo.Logger {
	return kgoLog{log.With().Str("component", "kafka").Logger()}
}

type kgoLog struct{ log zerolog.Logger }

func (l kgoLog) Level() kgo.LogLevel {
	switch l.log.GetLevel() {
	case zerolog.TraceLevel:
		return kgo.LogLevelDebug
	case zerolog.DebugLevel:
		return kgo.LogLevelInfo
	default:
		return kgo.LogLevelWarn
	}
}

func (l kgoLog) Log(level kgo.LogLevel, msg string, kv ...any) {
	var e *zerolog.Event
	switch level {
	case kgo.LogLevelError:
		e = l.log.Error()
	case kgo.LogLevelWarn:
		e = l.log.Warn()
	case kgo.LogLevelInfo:
		e = l.log.Debug()
	default:
		e = l.log.Trace()
	}
	for i := 0; i+1 < len(kv); i += 2 {
		e = e.Interface(fmt.Sprint(kv[i]), kv[i+1])
	}
	e.Msg(msg)
}
