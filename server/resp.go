package server

import (
	"errors"
	"strconv"
)

var errIncomplete = errors.New("server: incomplete reply")

// parseReply decodes one RESP2 or RESP3 value from b and returns it with
// the number of bytes it used. It reads the embedded command specs and
// serves tests; it is not the request parser (redcon is).
func parseReply(b []byte) (Reply, int, error) {
	line, n, err := readLine(b)
	if err != nil {
		return Reply{}, 0, err
	}
	if len(line) == 0 {
		return Reply{}, 0, errors.New("server: empty reply line")
	}
	t, rest := line[0], string(line[1:])
	switch t {
	case '+':
		return simple(rest), n, nil
	case '-':
		return errReply(rest), n, nil
	case ':':
		v, err := strconv.ParseInt(rest, 10, 64)
		return integer(v), n, err
	case '_':
		return replyNull, n, nil
	case '#':
		return boolReply(rest == "t"), n, nil
	case ',':
		f, err := strconv.ParseFloat(rest, 64)
		return double(f), n, err
	case '$', '=':
		size, err := strconv.Atoi(rest)
		if err != nil {
			return Reply{}, 0, err
		}
		if size < 0 {
			return replyNull, n, nil
		}
		if len(b) < n+size+2 {
			return Reply{}, 0, errIncomplete
		}
		v := b[n : n+size]
		if t == '=' && size >= 4 {
			return verbatim(string(v[:3]), string(v[4:])), n + size + 2, nil
		}
		return bulk(append([]byte(nil), v...)), n + size + 2, nil
	case '*', '%', '~', '>':
		count, err := strconv.Atoi(rest)
		if err != nil {
			return Reply{}, 0, err
		}
		if count < 0 {
			return replyNullArray, n, nil
		}
		if t == '%' {
			count *= 2
		}
		elems := make([]Reply, count)
		for i := range elems {
			e, m, err := parseReply(b[n:])
			if err != nil {
				return Reply{}, 0, err
			}
			elems[i] = e
			n += m
		}
		k := map[byte]kind{'*': kindArray, '%': kindMap, '~': kindSet, '>': kindPush}[t]
		return Reply{kind: k, elems: elems}, n, nil
	}
	return Reply{}, 0, errors.New("server: bad reply type " + strconv.QuoteRune(rune(t)))
}

func readLine(b []byte) ([]byte, int, error) {
	for i := 0; i+1 < len(b); i++ {
		if b[i] == '\r' && b[i+1] == '\n' {
			return b[:i], i + 2, nil
		}
	}
	return nil, 0, errIncomplete
}
