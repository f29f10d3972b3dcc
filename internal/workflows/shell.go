package workflows

import (
	"fmt"
	"regexp"
	"strings"
)

// A word is a shell word as parts: literal text and variable references.
type word []part

type part struct {
	lit string
	// name is set for $NAME and ${NAME}.
	name string
	// opaque is set for what the scanner does not expand: $(...),
	// ${NAME:-x}, $1, backquotes.
	opaque string
}

// literal returns the word's text when it has no variable in it.
func (w word) literal() (string, bool) {
	var b strings.Builder
	for _, p := range w {
		if p.name != "" || p.opaque != "" {
			return "", false
		}
		b.WriteString(p.lit)
	}
	return b.String(), true
}

// command is one simple command of a script: its words, without
// assignments before it or redirections, and the script line it starts on
// (0-based).
type command struct {
	line  int
	words []word
	text  string
}

// annotation is a `# pipectl-test:` comment: variables bound at run time
// and what they range over.
type annotation map[string]string

var annotationRe = regexp.MustCompile(`^#\s*pipectl-test:\s*(.*)$`)

// scanScript finds the simple commands of a bash script and its
// pipectl-test annotations. It knows enough of bash for workflow scripts:
// quotes, escapes, line continuations, comments, operators, $( ) and
// backquotes (scanned as nested scripts), here-documents (skipped),
// redirections, and the keywords of if, while, for and case.
func scanScript(src string) ([]command, annotation, error) {
	s := &scanner{src: src, ann: annotation{}}
	if err := s.run(); err != nil {
		return nil, nil, err
	}
	return s.cmds, s.ann, nil
}

type scanner struct {
	src  string
	pos  int
	line int
	// lineBase offsets lines of nested scripts.
	lineBase int
	cmds     []command
	ann      annotation
	// heredocs waiting for the end of the current line.
	heredocs []heredoc
	// cur is the command being read.
	cur      *command
	curStart int
	// noCommand is set after for and case: the words up to the next
	// separator are not commands.
	noCommand bool
}

type heredoc struct {
	delim string
	strip bool // <<-: leading tabs are stripped
}

func (s *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("script line %d: %s", s.lineBase+s.line+1, fmt.Sprintf(format, args...))
}

func (s *scanner) peek(k int) byte {
	if s.pos+k < len(s.src) {
		return s.src[s.pos+k]
	}
	return 0
}

// endCommand closes the command being read.
func (s *scanner) endCommand() {
	if s.cur != nil && len(s.cur.words) > 0 {
		s.cur.text = strings.TrimSpace(s.src[s.curStart:s.pos])
		s.cmds = append(s.cmds, *s.cur)
	}
	s.cur = nil
}

var keywords = map[string]bool{
	"if": true, "then": true, "else": true, "elif": true, "fi": true, "do": true, "done": true,
	"while": true, "until": true, "!": true, "time": true, "{": true, "}": true, "esac": true,
}

var assignmentRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?\+?=`)

func (s *scanner) run() error {
	for s.pos < len(s.src) {
		c := s.src[s.pos]
		switch {
		case c == ' ' || c == '\t':
			s.pos++
		case c == '\\' && s.peek(1) == '\n':
			s.pos += 2
			s.line++
		case c == '\n':
			s.endCommand()
			s.noCommand = false
			s.pos++
			s.line++
			if err := s.skipHeredocs(); err != nil {
				return err
			}
		case c == '#':
			end := strings.IndexByte(s.src[s.pos:], '\n')
			if end < 0 {
				end = len(s.src) - s.pos
			}
			if m := annotationRe.FindStringSubmatch(s.src[s.pos : s.pos+end]); m != nil {
				for _, f := range strings.Fields(m[1]) {
					name, what, ok := strings.Cut(f, "=")
					if !ok || (what != "each-pipeline" && what != "each-target") {
						return s.errorf("pipectl-test annotation %q: want NAME=each-pipeline or NAME=each-target", f)
					}
					s.ann[name] = what
				}
			}
			s.pos += end
		case c == ';' || c == '&' || c == '|' || c == '(' || c == ')':
			s.endCommand()
			s.noCommand = false
			s.pos++
			if n := s.peek(0); n == c || (c == '|' && n == '&') || (c == ';' && n == '&') {
				s.pos++
			}
		case c == '<' || c == '>' || ((c >= '0' && c <= '9') && (s.peek(1) == '<' || s.peek(1) == '>')):
			if err := s.redirection(); err != nil {
				return err
			}
		default:
			start := s.pos
			w, err := s.word()
			if err != nil {
				return err
			}
			lit, isLit := w.literal()
			switch {
			case s.cur == nil && s.noCommand:
				// for NAME in ...; case WORD in: not commands
			case s.cur == nil && isLit && keywords[lit]:
				// a keyword: the next word starts a command
			case s.cur == nil && isLit && (lit == "for" || lit == "case" || lit == "select"):
				s.noCommand = true
			case s.cur == nil && assignmentRe.MatchString(s.src[start:s.pos]):
				// NAME=value before a command, or alone
			default:
				if s.cur == nil {
					s.cur = &command{line: s.lineBase + s.line}
					s.curStart = start
				}
				s.cur.words = append(s.cur.words, w)
			}
		}
	}
	s.endCommand()
	if len(s.heredocs) > 0 {
		return s.errorf("here-document %q is not terminated", s.heredocs[0].delim)
	}
	return nil
}

// redirection skips a redirection and its target word; << starts a
// here-document, skipped after the current line.
func (s *scanner) redirection() error {
	for s.pos < len(s.src) && s.src[s.pos] >= '0' && s.src[s.pos] <= '9' {
		s.pos++
	}
	op := s.pos
	for s.pos < len(s.src) && strings.IndexByte("<>&|-", s.src[s.pos]) >= 0 {
		s.pos++
	}
	text := s.src[op:s.pos]
	for s.pos < len(s.src) && (s.src[s.pos] == ' ' || s.src[s.pos] == '\t') {
		s.pos++
	}
	if s.pos >= len(s.src) || s.src[s.pos] == '\n' {
		return s.errorf("redirection %s has no target", text)
	}
	start := s.pos
	if _, err := s.word(); err != nil {
		return err
	}
	if strings.HasPrefix(text, "<<") && text != "<<<" {
		delim := strings.NewReplacer(`"`, "", `'`, "", `\`, "").Replace(s.src[start:s.pos])
		s.heredocs = append(s.heredocs, heredoc{delim: delim, strip: strings.HasPrefix(text, "<<-")})
	}
	return nil
}

func (s *scanner) skipHeredocs() error {
	for _, h := range s.heredocs {
		for {
			if s.pos >= len(s.src) {
				return s.errorf("here-document %q is not terminated", h.delim)
			}
			end := strings.IndexByte(s.src[s.pos:], '\n')
			if end < 0 {
				end = len(s.src) - s.pos
			}
			l := s.src[s.pos : s.pos+end]
			s.pos += end
			if s.pos < len(s.src) {
				s.pos++ // the newline
			}
			s.line++
			if h.strip {
				l = strings.TrimLeft(l, "\t")
			}
			if l == h.delim {
				break
			}
		}
	}
	s.heredocs = nil
	return nil
}

func isWordEnd(c byte) bool {
	return strings.IndexByte(" \t\n;&|()<>", c) >= 0
}

// word reads one shell word.
func (s *scanner) word() (word, error) {
	var w word
	lit := func(t string) {
		if n := len(w); n > 0 && w[n-1].name == "" && w[n-1].opaque == "" {
			w[n-1].lit += t
			return
		}
		w = append(w, part{lit: t})
	}
	for s.pos < len(s.src) {
		c := s.src[s.pos]
		switch {
		case isWordEnd(c):
			return w, nil
		case c == '\\':
			if s.peek(1) == '\n' {
				s.pos += 2
				s.line++
				continue
			}
			if s.pos+1 < len(s.src) {
				lit(s.src[s.pos+1 : s.pos+2])
			}
			s.pos += 2
		case c == '\'':
			end := strings.IndexByte(s.src[s.pos+1:], '\'')
			if end < 0 {
				return nil, s.errorf("unterminated single quote")
			}
			t := s.src[s.pos+1 : s.pos+1+end]
			s.line += strings.Count(t, "\n")
			lit(t)
			if t == "" {
				w = append(w, part{}) // '' is an empty word, not no word
			}
			s.pos += end + 2
		case c == '"':
			s.pos++
			empty := true
			for {
				if s.pos >= len(s.src) {
					return nil, s.errorf("unterminated double quote")
				}
				d := s.src[s.pos]
				if d == '"' {
					s.pos++
					break
				}
				empty = false
				switch {
				case d == '\\' && strings.IndexByte("$`\"\\\n", s.peek(1)) >= 0:
					if s.peek(1) == '\n' {
						s.line++
					} else {
						lit(s.src[s.pos+1 : s.pos+2])
					}
					s.pos += 2
				case d == '$' || d == '`':
					p, err := s.dollar()
					if err != nil {
						return nil, err
					}
					w = append(w, p)
				default:
					if d == '\n' {
						s.line++
					}
					lit(string(d))
					s.pos++
				}
			}
			if empty {
				w = append(w, part{})
			}
		case c == '$' || c == '`':
			p, err := s.dollar()
			if err != nil {
				return nil, err
			}
			w = append(w, p)
		default:
			lit(string(c))
			s.pos++
		}
	}
	return w, nil
}

var nameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*`)

// dollar reads $NAME, ${...}, $(...), $((...)) or a backquoted command; a
// command substitution is scanned as a nested script.
func (s *scanner) dollar() (part, error) {
	if s.src[s.pos] == '`' {
		end := strings.IndexByte(s.src[s.pos+1:], '`')
		if end < 0 {
			return part{}, s.errorf("unterminated backquote")
		}
		inner := s.src[s.pos+1 : s.pos+1+end]
		if err := s.nested(inner); err != nil {
			return part{}, err
		}
		s.pos += end + 2
		return part{opaque: "`" + inner + "`"}, nil
	}
	rest := s.src[s.pos+1:]
	switch {
	case strings.HasPrefix(rest, "("):
		end, err := matchParen(rest)
		if err != nil {
			return part{}, s.errorf("%v", err)
		}
		inner := rest[1:end]
		if !strings.HasPrefix(inner, "(") { // $(( )) is arithmetic
			if err := s.nested(inner); err != nil {
				return part{}, err
			}
		}
		s.pos += 1 + end + 1
		return part{opaque: "$(" + inner + ")"}, nil
	case strings.HasPrefix(rest, "{"):
		end := strings.IndexByte(rest, '}')
		if end < 0 {
			return part{}, s.errorf("unterminated ${")
		}
		inner := rest[1:end]
		s.pos += 1 + end + 1
		if nameRe.FindString(inner) == inner {
			return part{name: inner}, nil
		}
		return part{opaque: "${" + inner + "}"}, nil
	default:
		if n := nameRe.FindString(rest); n != "" {
			s.pos += 1 + len(n)
			return part{name: n}, nil
		}
		if rest != "" && strings.IndexByte("0123456789@*#?$!-", rest[0]) >= 0 {
			s.pos += 2
			return part{opaque: "$" + rest[:1]}, nil
		}
		s.pos++
		return part{lit: "$"}, nil
	}
}

// nested scans a command substitution as its own script, on the lines it
// occupies.
func (s *scanner) nested(inner string) error {
	sub := &scanner{src: inner, ann: s.ann, lineBase: s.lineBase + s.line}
	if err := sub.run(); err != nil {
		return err
	}
	s.cmds = append(s.cmds, sub.cmds...)
	s.line += strings.Count(inner, "\n")
	return nil
}

// matchParen returns the index of the parenthesis closing the one that
// starts s, skipping quoted text.
func matchParen(s string) (int, error) {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return 0, fmt.Errorf("unterminated single quote in $( )")
			}
			i += j + 1
		case '"':
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' {
					i++
				}
			}
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i, nil
			}
		}
	}
	return 0, fmt.Errorf("unterminated $(")
}
