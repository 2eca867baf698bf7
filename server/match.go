package server

// stringMatch reports whether str matches the glob pattern pat with Redis's
// stringmatchlen semantics (util.c): byte-wise, '*', '?', character classes
// "[abc]", "[^a]", "[a-z]" (reversed ranges allowed), and '\' escapes; an
// unterminated class runs to the end of the pattern. Abusive patterns stop
// at nesting depth 1000 like Redis.
func stringMatch(pat, str []byte, nocase bool) bool {
	skip := false
	return matchImpl(pat, str, nocase, &skip, 0)
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// matchImpl is a direct port; at(b, i) stands for C's reads of the NUL
// terminator past the end.
func matchImpl(pat, str []byte, nocase bool, skipLonger *bool, nesting int) bool {
	if nesting > 1000 {
		return false
	}
	at := func(b []byte, i int) byte {
		if i < len(b) {
			return b[i]
		}
		return 0
	}
	p, s := 0, 0
	for p < len(pat) && s < len(str) {
		switch pat[p] {
		case '*':
			for p < len(pat) && at(pat, p+1) == '*' {
				p++
			}
			if len(pat)-p == 1 {
				return true
			}
			for s < len(str) {
				if matchImpl(pat[p+1:], str[s:], nocase, skipLonger, nesting+1) {
					return true
				}
				if *skipLonger {
					return false
				}
				s++
			}
			*skipLonger = true
			return false
		case '?':
			s++
		case '[':
			p++
			not := at(pat, p) == '^'
			if not {
				p++
			}
			match := false
			for {
				rem := len(pat) - p
				c := at(pat, p)
				switch {
				case c == '\\' && rem >= 2:
					p++
					if pat[p] == str[s] {
						match = true
					}
				case c == ']' && rem > 0:
					// end of class
				case rem <= 0:
					p--
				case rem >= 3 && pat[p+1] == '-':
					start, end, ch := pat[p], pat[p+2], str[s]
					if start > end {
						start, end = end, start
					}
					if nocase {
						start, end, ch = lower(start), lower(end), lower(ch)
					}
					p += 2
					if ch >= start && ch <= end {
						match = true
					}
				default:
					if nocase {
						if lower(pat[p]) == lower(str[s]) {
							match = true
						}
					} else if pat[p] == str[s] {
						match = true
					}
				}
				if (c == ']' && rem > 0) || rem <= 0 {
					break
				}
				p++
			}
			if not {
				match = !match
			}
			if !match {
				return false
			}
			s++
		case '\\':
			if len(pat)-p >= 2 {
				p++
			}
			fallthrough
		default:
			if nocase {
				if lower(pat[p]) != lower(str[s]) {
					return false
				}
			} else if pat[p] != str[s] {
				return false
			}
			s++
		}
		p++
		if s == len(str) {
			for p < len(pat) && pat[p] == '*' {
				p++
			}
			break
		}
	}
	return p == len(pat) && s == len(str)
}
