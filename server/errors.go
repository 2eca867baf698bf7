package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/rs/zerolog"
)

// Sentinel errors of command handlers. errorReplies maps each to the exact
// Redis reply; errors.go is the only place that turns errors into replies.
var (
	ErrWrongType        = errors.New("server: wrong type")
	ErrNotInteger       = errors.New("server: not an integer")
	ErrNotFloat         = errors.New("server: not a float")
	ErrOverflow         = errors.New("server: increment or decrement would overflow")
	ErrDecrOverflow     = errors.New("server: decrement would overflow")
	ErrNaN              = errors.New("server: increment would produce NaN or infinity")
	ErrSyntax           = errors.New("server: syntax error")
	ErrNoSuchKey        = errors.New("server: no such key")
	ErrTooLarge         = errors.New("server: string exceeds maximum allowed size")
	ErrOffsetRange      = errors.New("server: offset is out of range")
	ErrDBIndex          = errors.New("server: DB index is out of range")
	ErrNoAuth           = errors.New("server: authentication required")
	ErrWrongPass        = errors.New("server: invalid username-password pair")
	ErrNoPassword       = errors.New("server: no password configured")
	ErrInvalidCursor    = errors.New("server: invalid cursor")
	ErrSameObject       = errors.New("server: source and destination objects are the same")
	ErrNoProto          = errors.New("server: unsupported protocol version")
	ErrProtoNotInteger  = errors.New("server: protocol version is not an integer")
	ErrHelloNoAuth      = errors.New("server: HELLO before authentication")
	ErrBadClientName    = errors.New("server: bad client name")
	ErrExpireNXAndOther = errors.New("server: NX and XX, GT or LT at the same time")
	ErrExpireGTAndLT    = errors.New("server: GT and LT at the same time")
	ErrMaxClients       = errors.New("server: max number of clients reached")
	ErrAckTimeout       = errors.New("server: write acknowledgement timed out")
	ErrTimeout          = errors.New("server: command timed out")
	ErrShutdown         = errors.New("server: shutting down")
	ErrInternal         = errors.New("server: internal error")

	// GEOREP SNAPSHOT (snapshot.go).
	ErrSnapshotsOff  = errors.New("server: snapshots are off")
	ErrNoSnapshot    = errors.New("server: no such snapshot")
	ErrSnapshotName  = errors.New("server: invalid snapshot name")
	ErrSnapshotCount = errors.New("server: snapshot read count out of range")

	// Collections (hashes.go, sets.go, zsets.go, geo.go).
	ErrHashNotInteger  = errors.New("server: hash value is not an integer")
	ErrHashNotFloat    = errors.New("server: hash value is not a float")
	ErrIncrNaN         = errors.New("server: increment is NaN or infinity")
	ErrRandCount       = errors.New("server: random count out of range")
	ErrNotPositive     = errors.New("server: value is out of range, must be positive")
	ErrValueRange      = errors.New("server: value is out of range")
	ErrNumKeys         = errors.New("server: numkeys should be greater than 0")
	ErrNumKeysArgs     = errors.New("server: more keys than arguments")
	ErrLimitNegative   = errors.New("server: LIMIT can't be negative")
	ErrMinMaxFloat     = errors.New("server: min or max is not a float")
	ErrMinMaxLex       = errors.New("server: min or max not valid string range item")
	ErrScoreNaN        = errors.New("server: resulting score is not a number")
	ErrZAddXXNX        = errors.New("server: XX and NX together")
	ErrZAddGTLTNX      = errors.New("server: GT, LT and NX together")
	ErrZAddIncr        = errors.New("server: INCR with several pairs")
	ErrWeightFloat     = errors.New("server: weight value is not a float")
	ErrCountPositive   = errors.New("server: count should be greater than 0")
	ErrWithScoresByLex = errors.New("server: WITHSCORES with BYLEX")
	ErrLimitNoBy       = errors.New("server: LIMIT without BYSCORE or BYLEX")
	ErrGeoMember       = errors.New("server: could not decode requested zset member")
	ErrGeoUnit         = errors.New("server: unsupported unit")
	ErrGeoCount        = errors.New("server: COUNT must be > 0")
	ErrGeoRadius       = errors.New("server: radius cannot be negative")
	ErrGeoBox          = errors.New("server: height or width cannot be negative")
	ErrGeoAnyCount     = errors.New("server: ANY without COUNT")
	ErrTooManyElems    = errors.New("server: too many elements in one write")

	// Lists (lists.go, blocking.go).
	ErrIndexRange      = errors.New("server: index out of range")
	ErrRankZero        = errors.New("server: RANK can't be zero")
	ErrCountNegative   = errors.New("server: COUNT can't be negative")
	ErrMaxLenNegative  = errors.New("server: MAXLEN can't be negative")
	ErrTimeoutNegative = errors.New("server: timeout is negative")
	ErrTimeoutNotFloat = errors.New("server: timeout is not a float or out of range")
	ErrTimeoutRange    = errors.New("server: timeout is out of range")
)

var errorReplies = map[error]string{
	ErrWrongType:        "WRONGTYPE Operation against a key holding the wrong kind of value",
	ErrNotInteger:       "ERR value is not an integer or out of range",
	ErrNotFloat:         "ERR value is not a valid float",
	ErrOverflow:         "ERR increment or decrement would overflow",
	ErrDecrOverflow:     "ERR decrement would overflow",
	ErrNaN:              "ERR increment would produce NaN or Infinity",
	ErrSyntax:           "ERR syntax error",
	ErrNoSuchKey:        "ERR no such key",
	ErrTooLarge:         "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
	ErrOffsetRange:      "ERR offset is out of range",
	ErrDBIndex:          "ERR DB index is out of range",
	ErrNoAuth:           "NOAUTH Authentication required.",
	ErrWrongPass:        "WRONGPASS invalid username-password pair or user is disabled.",
	ErrNoPassword:       "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
	ErrInvalidCursor:    "ERR invalid cursor",
	ErrSameObject:       "ERR source and destination objects are the same",
	ErrNoProto:          "NOPROTO unsupported protocol version",
	ErrProtoNotInteger:  "ERR Protocol version is not an integer or out of range",
	ErrHelloNoAuth:      "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
	ErrBadClientName:    "ERR Client names cannot contain spaces, newlines or special characters.",
	ErrExpireNXAndOther: "ERR NX and XX, GT or LT options at the same time are not compatible",
	ErrExpireGTAndLT:    "ERR GT and LT options at the same time are not compatible",
	ErrMaxClients:       "ERR max number of clients reached",
	ErrAckTimeout:       "ERR timed out waiting for the write to be acknowledged (its outcome is unknown)",
	ErrTimeout:          "ERR command timed out",
	ErrShutdown:         "ERR server is shutting down",
	ErrInternal:         "ERR internal error",

	ErrSnapshotsOff:  "ERR georep snapshots are off: the node has no snapshot directory (--snapshot-dir)",
	ErrNoSnapshot:    "ERR georep no such snapshot",
	ErrSnapshotName:  "ERR georep invalid snapshot name (a file name ending in .snap, without path separators or '..')",
	ErrSnapshotCount: "ERR georep snapshot read count must be 1..1048576",

	ErrHashNotInteger:  "ERR hash value is not an integer",
	ErrHashNotFloat:    "ERR hash value is not a float",
	ErrIncrNaN:         "ERR value is NaN or Infinity",
	ErrRandCount:       "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
	ErrNotPositive:     "ERR value is out of range, must be positive",
	ErrValueRange:      "ERR value is out of range",
	ErrNumKeys:         "ERR numkeys should be greater than 0",
	ErrNumKeysArgs:     "ERR Number of keys can't be greater than number of args",
	ErrLimitNegative:   "ERR LIMIT can't be negative",
	ErrMinMaxFloat:     "ERR min or max is not a float",
	ErrMinMaxLex:       "ERR min or max not valid string range item",
	ErrScoreNaN:        "ERR resulting score is not a number (NaN)",
	ErrZAddXXNX:        "ERR XX and NX options at the same time are not compatible",
	ErrZAddGTLTNX:      "ERR GT, LT, and/or NX options at the same time are not compatible",
	ErrZAddIncr:        "ERR INCR option supports a single increment-element pair",
	ErrWeightFloat:     "ERR weight value is not a float",
	ErrCountPositive:   "ERR count should be greater than 0",
	ErrWithScoresByLex: "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
	ErrLimitNoBy:       "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
	ErrGeoMember:       "ERR could not decode requested zset member",
	ErrGeoUnit:         "ERR unsupported unit provided. please use M, KM, FT, MI",
	ErrGeoCount:        "ERR COUNT must be > 0",
	ErrGeoRadius:       "ERR radius cannot be negative",
	ErrGeoBox:          "ERR height or width cannot be negative",
	ErrGeoAnyCount:     "ERR the ANY argument requires COUNT argument",
	ErrTooManyElems:    "ERR georep: a write may change at most 8192 elements of a collection at once",

	ErrIndexRange:      "ERR index out of range",
	ErrRankZero:        "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
	ErrCountNegative:   "ERR COUNT can't be negative",
	ErrMaxLenNegative:  "ERR MAXLEN can't be negative",
	ErrTimeoutNegative: "ERR timeout is negative",
	ErrTimeoutNotFloat: "ERR timeout is not a float or out of range",
	ErrTimeoutRange:    "ERR timeout is out of range",
}

// replyError is an error that carries its own reply text: the formatted
// Redis errors (wrong arity, unknown command, per-command messages).
type replyError struct{ msg string }

func (e *replyError) Error() string      { return "server: " + e.msg }
func (e *replyError) RedisError() string { return e.msg }

// errorf returns an error whose reply is the formatted message (which must
// start with an upper-case code word such as ERR).
func errorf(format string, args ...any) error {
	return &replyError{msg: fmt.Sprintf(format, args...)}
}

func errArity(name string) error {
	return errorf("ERR wrong number of arguments for '%s' command", name)
}

func errInvalidExpire(cmd string) error {
	return errorf("ERR invalid expire time in '%s' command", cmd)
}

func errUnknownSubcommand(sub, cmd string) error {
	return errorf("ERR unknown subcommand '%s'. Try %s HELP.", truncate(sub, 128), strings.ToUpper(cmd))
}

// errUnknownCommand formats Redis 7's unknown command error: the name and
// the leading arguments, each quoted, up to about 128 bytes.
func errUnknownCommand(args [][]byte) error {
	var b strings.Builder
	for _, a := range args[1:] {
		if b.Len() >= 128 {
			break
		}
		b.WriteByte('\'')
		b.WriteString(truncate(string(a), 128-b.Len()))
		b.WriteString("' ")
	}
	return errorf("ERR unknown command '%s', with args beginning with: %s", truncate(string(args[0]), 128), b.String())
}

func truncate(s string, n int) string {
	if n < 0 {
		n = 0
	}
	if len(s) > n {
		return s[:n]
	}
	return s
}

// protocolError is a malformed request: the reply is sent and the
// connection closed.
type protocolError struct{ msg string }

func (e *protocolError) Error() string      { return "server: protocol error: " + e.msg }
func (e *protocolError) RedisError() string { return "ERR Protocol error: " + e.msg }

// errorLog logs each distinct unexpected error once, so that a client
// repeating a failing command cannot flood the log.
type errorLog struct {
	log  zerolog.Logger
	mu   sync.Mutex
	seen map[string]bool
}

const maxLoggedErrors = 1024

func (l *errorLog) once(key string, fn func(zerolog.Logger)) {
	l.mu.Lock()
	if l.seen == nil {
		l.seen = make(map[string]bool)
	}
	logged := l.seen[key]
	if !logged && len(l.seen) < maxLoggedErrors {
		l.seen[key] = true
	}
	l.mu.Unlock()
	if !logged {
		fn(l.log)
	}
}

// errorReply maps err to its RESP error reply. Errors implementing
// RedisError carry their text; sentinels come from errorReplies; context
// ends become timeouts; anything else is "ERR internal error", logged once.
func (s *Server) errorReply(cmd string, err error) Reply {
	var re RedisError
	if errors.As(err, &re) {
		return errReply(re.RedisError())
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if msg, ok := errorReplies[e]; ok {
			return errReply(msg)
		}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return errReply(errorReplies[ErrTimeout])
	case errors.Is(err, context.Canceled):
		return errReply(errorReplies[ErrShutdown])
	}
	s.errs.once(cmd+": "+err.Error(), func(l zerolog.Logger) {
		l.Error().Err(err).Str(fieldCommand, cmd).Msg("command failed")
	})
	return errReply(errorReplies[ErrInternal])
}
