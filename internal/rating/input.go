package rating

import (
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/platform/i18n"
)

// Input is one rating as the applicant gives it.
type Input struct {
	ApplicationID string
	Level         Level
	Channel       Channel
	Tags          []string // tag codes (Tags) offered on the channel for the level
	Comment       string   // optional text, at most MaxComment characters
}

// ParseLevel reads a level as a form or API sends it: "1" … "5".
func ParseLevel(s string) (Level, error) {
	s = strings.TrimSpace(s)
	if len(s) != 1 {
		return 0, ErrLevel
	}
	n, err := strconv.Atoi(s)
	if err != nil || !Level(n).Valid() {
		return 0, ErrLevel
	}
	return Level(n), nil
}

// Clean checks and normalises the input: a known level and channel; tags known, offered on
// the channel and fitting the level, without repeats, in the catalogue's order; the comment
// trimmed, of printable text and newlines, at most MaxComment characters. A poor rating must
// give a reason — a tag or a comment — or there would be nothing to rectify.
func (in Input) Clean() (Input, error) {
	in.ApplicationID = strings.TrimSpace(in.ApplicationID)
	if in.ApplicationID == "" || len(in.ApplicationID) > 64 || !idChars(in.ApplicationID) {
		return Input{}, invalid("application_id", "rating.application", "缺少办件编号", "the application is missing")
	}
	if !in.Level.Valid() {
		return Input{}, ErrLevel
	}
	if in.Channel == "" {
		in.Channel = ChannelWeb
	}
	if !in.Channel.Valid() {
		return Input{}, ErrChannel
	}
	if len(in.Tags) > 4*len(Tags) { // more than any form sends: refuse before looking at them
		return Input{}, invalid("tags", "rating.tags", "评价标签最多 %d 个", "at most %d reason tags", MaxTags)
	}
	chosen := make(map[string]bool, len(in.Tags))
	for _, code := range in.Tags {
		code = strings.TrimSpace(code)
		if code == "" {
			continue
		}
		t, ok := tagByCode[code]
		if !ok || !t.Offered(in.Channel) {
			return Input{}, invalid("tags", "rating.tag", "未知的评价标签 %q", "unknown reason tag %q", clip(code, 40))
		}
		if !t.Fits(in.Level) {
			return Input{}, &i18n.Error{Code: "rating.tag_level", Status: http.StatusBadRequest, Field: "tags",
				Msg: i18n.T("标签“"+t.Name.ZH+"”与所选评价等级不符", "the reason “"+t.Name.EN+"” does not go with the chosen level")}
		}
		chosen[code] = true
	}
	if len(chosen) > MaxTags {
		return Input{}, invalid("tags", "rating.tags", "评价标签最多 %d 个", "at most %d reason tags", MaxTags)
	}
	in.Tags = make([]string, 0, len(chosen))
	for _, t := range Tags { // catalogue order: the same choice is stored the same way
		if chosen[t.Code] {
			in.Tags = append(in.Tags, t.Code)
		}
	}
	in.Comment = strings.TrimSpace(strings.ReplaceAll(in.Comment, "\r\n", "\n"))
	if !utf8.ValidString(in.Comment) || strings.ContainsFunc(in.Comment, badCommentRune) {
		return Input{}, invalid("comment", "rating.comment", "评价内容含有无效字符", "the text has characters that are not allowed")
	}
	if utf8.RuneCountInString(in.Comment) > MaxComment {
		return Input{}, invalid("comment", "rating.comment", "评价内容最长 %d 个字", "the text is at most %d characters", MaxComment)
	}
	if in.Level.Poor() && len(in.Tags) == 0 && in.Comment == "" {
		return Input{}, ErrReasonRequired
	}
	return in, nil
}

// badCommentRune: control characters other than newline and tab, and Unicode format
// characters (bidirectional overrides would let a text display other than it reads).
func badCommentRune(r rune) bool {
	if r == '\n' || r == '\t' {
		return false
	}
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError
}

func idChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func clip(v string, n int) string {
	if utf8.RuneCountInString(v) <= n {
		return v
	}
	r := []rune(v)
	return string(r[:n]) + "…"
}
