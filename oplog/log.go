package oplog

import (
	"fmt"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Logger adapts a zerolog logger to franz-go's: franz-go's info messages
// (per-connection chatter) go to debug, its debug to trace.
func Logger(log zerolog.Logger) kgo.Logger {
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
