package materializer

import (
	"fmt"
	"strings"

	"github.com/rs/zerolog"
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
