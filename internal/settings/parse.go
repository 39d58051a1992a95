package settings

import (
	"encoding"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// Struct tags read by Parse. See the package documentation for the scheme.
const (
	tagFlag    = "flag"
	tagShort   = "short"
	tagDefault = "default"
	tagMeta    = "meta"
	tagHelp    = "help"
	tagForms   = "forms"
	tagProblem = "problem"
	tagSep     = "sep"
)

// EnvName returns the environment variable that sets the flag name for a
// program whose variables start with prefix: EnvName("GATEWAY_",
// "allow-file") is "GATEWAY_ALLOW_FILE".
func EnvName(prefix, name string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Parse fills the struct that dst points to from the environment, then from
// the command line args, and returns the positional arguments left over.
//
// Each exported field with a `flag` tag is one setting; see the package
// documentation for the tags and the field types supported. For each
// setting, in order of precedence:
//
//  1. the flag on the command line (--name VALUE, --name=VALUE, -name
//     VALUE, or the one-letter alias from the `short` tag);
//  2. the environment variable EnvName(prefix, name), read with lookup
//     (nil means os.LookupEnv); an empty variable counts as unset;
//  3. the `default` tag;
//  4. otherwise the field keeps the value it has in *dst.
//
// A repeatable setting (a slice field) given on the command line replaces
// what the environment said; each occurrence adds one element, or, with a
// `sep` tag, the elements its value lists. In the environment its elements
// are separated by commas; blanks around them are trimmed and empty
// elements skipped.
//
// Flags and positional arguments may be mixed; "--" ends the flags.
//
// cmd is the command as the user types it ("gateway run"); it names the
// command in --help and in error messages. When args hold --help, -help or
// -h, Parse writes the help text to usage (nil discards it) and returns
// [flag.ErrHelp]. Parse writes nothing to usage otherwise: errors are
// returned, for the caller to print.
//
// Bad values, unknown flags and missing flag arguments are reported as
// errors that wrap [ErrInvalid]; a bad value is an [*Error] naming both
// spellings of the setting, the value given and the accepted forms. When
// several settings are bad, the errors are joined (errors.Join), one per
// line. A bad environment variable is not an error when the command line
// sets the same setting. Errors that do not wrap ErrInvalid report a
// mistake in the struct definition itself.
//
// Parse does not look at variables other than those of dst's settings; see
// [Unknown] for misspelled ones. It does no validation across fields; that
// is the job of a Validate method on the settings struct. Parse is safe for
// concurrent use with different dst values.
func Parse(cmd string, prefix string, dst any, args []string, lookup func(string) (string, bool), usage io.Writer) (rest []string, err error) {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("settings: Parse needs a non-nil pointer to a struct, got %T", dst)
	}
	list, err := settingsOf(rv.Elem().Type(), prefix)
	if err != nil {
		return nil, err
	}
	if lookup == nil {
		lookup = os.LookupEnv
	}
	if usage == nil {
		usage = io.Discard
	}

	envErrs, err := parseEnv(dst, list, lookup)
	if err != nil {
		return nil, err
	}

	values := make([]*flagValue, len(list))
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	for i, s := range list {
		v := &flagValue{s: s, field: rv.Elem().FieldByIndex(s.index)}
		values[i] = v
		fs.Var(v, s.name, s.help)
		if s.short != "" {
			fs.Var(v, s.short, s.help)
		}
	}

	rest, err = parseArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		var doc Doc
		if d, ok := dst.(Documenter); ok {
			doc = d.Doc()
		}
		if werr := writeHelp(usage, cmd, prefix, doc, list); werr != nil {
			return nil, fmt.Errorf("writing help for %s: %w", cmd, werr)
		}
		return nil, flag.ErrHelp
	}
	var errs []error
	if err != nil {
		var bad *Error
		for _, v := range values {
			if v.err != nil {
				bad = v.err
			}
		}
		if bad != nil {
			errs = append(errs, bad)
		} else {
			errs = append(errs, Invalidf("%s: %v; run %q for the list of flags", cmd, err, cmd+" --help"))
		}
	}
	for i, e := range envErrs {
		if e != nil && !values[i].seen {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if rest == nil {
		rest = []string{}
	}
	return rest, nil
}

// parseArgs parses flags and collects the positional arguments, which may
// come between flags. Each round consumes at least one argument, so the loop
// ends after at most len(args)+1 rounds.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	remaining := args
	for range len(args) + 1 {
		if err := fs.Parse(remaining); err != nil {
			return nil, err
		}
		left := fs.Args()
		if len(left) == 0 {
			break
		}
		consumed := len(remaining) - len(left)
		if consumed > 0 && remaining[consumed-1] == "--" {
			rest = append(rest, left...)
			break
		}
		rest = append(rest, left[0])
		remaining = left[1:]
	}
	return rest, nil
}

// parseEnv fills dst from the environment and the defaults with
// caarlos0/env. The variables are looked up by their derived names and handed
// to env keyed by flag name (env reads the `flag` tag as its key), so a flag
// and its variable cannot drift apart. It returns one error slot per
// setting (nil when fine), or an error for a struct env cannot handle.
func parseEnv(dst any, list []*Setting, lookup func(string) (string, bool)) ([]error, error) {
	environ := make(map[string]string, len(list))
	from := make(map[string]string, len(list))
	funcs := make(map[reflect.Type]env.ParserFunc)
	byGo := make(map[string]int, len(list))
	for i, s := range list {
		byGo[s.goName] = i
		if s.envFunc != nil {
			funcs[s.envType] = s.envFunc
		}
		v, ok := lookup(s.env)
		if !ok {
			continue
		}
		if s.repeated {
			v = normalizeList(v)
		}
		if v != "" {
			environ[s.name] = v
			from[s.name] = "$" + s.env
		}
	}
	err := env.ParseWithOptions(dst, env.Options{
		Environment:         environ,
		TagName:             tagFlag,
		DefaultValueTagName: tagDefault,
		PrefixTagName:       "settingsEnvPrefixUnused",
		FuncMap:             funcs,
	})
	errs := make([]error, len(list))
	if err == nil {
		return errs, nil
	}
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return nil, fmt.Errorf("settings: reading the environment: %w", err)
	}
	for _, e := range agg.Errors {
		var pe env.ParseError
		if !errors.As(e, &pe) {
			return nil, fmt.Errorf("settings: reading the environment: %w", e)
		}
		i, ok := byGo[pe.Name]
		if !ok {
			return nil, fmt.Errorf("settings: reading the environment: %w", e)
		}
		s := list[i]
		value, source := environ[s.name], from[s.name]
		if source == "" {
			value, source = s.def, "the default"
		}
		errs[i] = s.invalid(value, source, pe.Err)
	}
	return errs, nil
}

// normalizeList trims the blanks around each comma-separated element of a
// repeatable setting's variable and drops empty elements.
func normalizeList(v string) string {
	return strings.Join(splitList(v, ","), ",")
}

// splitList splits v at sep, trims the blanks around each element and drops
// empty ones.
func splitList(v, sep string) []string {
	parts := strings.Split(v, sep)
	kept := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			kept = append(kept, p)
		}
	}
	return kept
}

// flagValue is the flag.Value of one setting; it writes into the field.
type flagValue struct {
	s     *Setting
	field reflect.Value
	seen  bool   // set on the command line at least once
	err   *Error // why the last Set failed
}

var _ flag.Value = (*flagValue)(nil)

func (v *flagValue) String() string {
	if v == nil || !v.field.IsValid() {
		return ""
	}
	return fmt.Sprint(v.field.Interface())
}

// IsBoolFlag lets a bool setting be given as --name alone.
func (v *flagValue) IsBoolFlag() bool { return v != nil && v.s.isBool }

func (v *flagValue) Set(arg string) error {
	if !v.s.repeated {
		x, err := v.s.conv(arg)
		if err != nil {
			return v.fail(arg, err)
		}
		v.field.Set(x)
		v.seen = true
		return nil
	}
	parts := []string{arg}
	if v.s.sep != "" {
		parts = splitList(arg, v.s.sep)
	}
	elems := make([]reflect.Value, 0, len(parts))
	for _, p := range parts {
		x, err := v.s.conv(p)
		if err != nil {
			return v.fail(arg, err)
		}
		elems = append(elems, x)
	}
	if !v.seen {
		v.field.Set(reflect.MakeSlice(v.field.Type(), 0, len(elems)))
	}
	v.field.Set(reflect.Append(v.field, elems...))
	v.seen = true
	return nil
}

func (v *flagValue) fail(arg string, err error) error {
	v.err = v.s.invalid(arg, (&Error{Flag: "--" + v.s.name, Short: v.s.shortFlag()}).Names(), err)
	return v.err
}

// Setting is one field of a settings struct, as Parse sees it. Settings
// are created by [Index]; validation code uses them to report problems
// in the setting's own terms ([Setting.Fail]).
type Setting struct {
	name   string // long flag name: "handshake-timeout"
	short  string // one-letter alias, or ""
	env    string // environment variable: "GATEWAY_HANDSHAKE_TIMEOUT"
	goName string // Go field name, unique in the struct
	index  []int  // for reflect.Value.FieldByIndex
	typ    reflect.Type

	meta, help, forms string
	def               string
	hasDef            bool

	repeated bool   // a slice: each flag adds elements
	sep      string // repeated: a flag's value lists elements separated by sep
	isBool   bool
	problem  string // what is wrong when a value does not parse: "not a duration"
	// conv parses one command-line value: the field's value, or one
	// element of a repeated setting.
	conv func(string) (reflect.Value, error)

	// envType and envFunc are handed to caarlos0/env so that the
	// environment parses values exactly like conv does. envFunc is nil
	// when env handles the type itself through encoding.TextUnmarshaler.
	envType reflect.Type
	envFunc env.ParserFunc
}

// Name returns the long flag name without dashes: "allow-file".
func (s *Setting) Name() string { return s.name }

// Flag returns the long flag with its dashes: "--allow-file".
func (s *Setting) Flag() string { return "--" + s.name }

// Env returns the environment variable: "GATEWAY_ALLOW_FILE".
func (s *Setting) Env() string { return s.env }

// Default returns the `default` tag ("" when there is none).
func (s *Setting) Default() string { return s.def }

func (s *Setting) shortFlag() string {
	if s.short == "" {
		return ""
	}
	return "-" + s.short
}

// invalid reports value, which came from source, as not parseable.
func (s *Setting) invalid(value, source string, cause error) *Error {
	return &Error{
		Flag: "--" + s.name, Short: s.shortFlag(), Env: s.env,
		Problem: s.problem, Value: value, Source: source, Want: s.forms, Err: cause,
	}
}

var (
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	durationType        = reflect.TypeFor[time.Duration]()
)

// settingsOf lists the settings of struct type t, in field order, walking
// into struct fields that have no flag tag (embedded or not).
func settingsOf(t reflect.Type, prefix string) ([]*Setting, error) {
	var out []*Setting
	if err := collect(t, prefix, nil, &out); err != nil {
		return nil, err
	}
	names := map[string]string{"h": "", "help": ""}
	goNames := map[string]bool{}
	for _, s := range out {
		for _, n := range []string{s.name, s.short} {
			if n == "" {
				continue
			}
			if _, dup := names[n]; dup {
				return nil, fmt.Errorf("settings: %v field %s: flag %q is taken (by help or another field)", t, s.goName, n)
			}
			names[n] = s.goName
		}
		if goNames[s.goName] {
			return nil, fmt.Errorf("settings: %v: two settings are named %s; Go field names of settings must be unique", t, s.goName)
		}
		goNames[s.goName] = true
	}
	return out, nil
}

func collect(t reflect.Type, prefix string, index []int, out *[]*Setting) error {
	for i := range t.NumField() {
		f := t.Field(i)
		idx := append(append([]int(nil), index...), i)
		name, tagged := f.Tag.Lookup(tagFlag)
		if !f.IsExported() {
			if tagged {
				return fmt.Errorf("settings: %v field %s: a setting must be exported", t, f.Name)
			}
			continue
		}
		if name == "-" {
			continue
		}
		if name == "" {
			if _, ok := f.Tag.Lookup(tagDefault); ok {
				return fmt.Errorf("settings: %v field %s: a default tag needs a flag tag", t, f.Name)
			}
			if f.Type.Kind() == reflect.Struct && !reflect.PointerTo(f.Type).Implements(textUnmarshalerType) {
				if err := collect(f.Type, prefix, idx, out); err != nil {
					return err
				}
			}
			continue
		}
		s, err := newSetting(f, prefix, name, idx)
		if err != nil {
			return fmt.Errorf("settings: %v field %s: %w", t, f.Name, err)
		}
		*out = append(*out, s)
	}
	return nil
}

func newSetting(f reflect.StructField, prefix, name string, index []int) (*Setting, error) {
	if !validFlagName(name) {
		return nil, fmt.Errorf("flag name %q: want lower-case letters, digits and '-', starting with a letter", name)
	}
	s := &Setting{
		name:   name,
		short:  f.Tag.Get(tagShort),
		env:    EnvName(prefix, name),
		goName: f.Name,
		index:  index,
		typ:    f.Type,
		meta:   f.Tag.Get(tagMeta),
		help:   f.Tag.Get(tagHelp),
		forms:  f.Tag.Get(tagForms),
		sep:    f.Tag.Get(tagSep),
	}
	s.def, s.hasDef = f.Tag.Lookup(tagDefault)
	if s.short != "" && (len(s.short) != 1 || !isLetter(s.short[0])) {
		return nil, fmt.Errorf("short flag %q: want one ASCII letter", s.short)
	}

	k, ok := kindOf(f.Type)
	switch {
	case ok:
	case f.Type.Kind() == reflect.Slice:
		if k, ok = kindOf(f.Type.Elem()); !ok {
			return nil, fmt.Errorf("unsupported element type %v", f.Type.Elem())
		}
		s.repeated = true
	default:
		return nil, fmt.Errorf("unsupported type %v", f.Type)
	}
	if s.sep != "" && !s.repeated {
		return nil, fmt.Errorf("a sep tag needs a slice field, not %v", f.Type)
	}
	if s.sep != "" && s.sep != "," {
		return nil, fmt.Errorf(`sep tag %q: only "," is supported, as in the environment`, s.sep)
	}
	s.conv, s.isBool, s.problem = k.conv, k.isBool, k.problem
	if p := f.Tag.Get(tagProblem); p != "" {
		s.problem = p
	}
	s.envType, s.envFunc = k.typ, k.envFunc
	if s.meta == "" && !s.isBool {
		s.meta = k.meta
	}
	if s.forms == "" {
		s.forms = k.forms
	}
	if s.forms == "" {
		s.forms = s.meta
	}
	if s.hasDef {
		if err := s.checkDefault(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// checkDefault parses the default tag like a flag would, so a bad default
// shows up as a programming error, not as bad input.
func (s *Setting) checkDefault() error {
	parts := []string{s.def}
	if s.repeated {
		parts = strings.Split(s.def, ",")
	}
	for _, part := range parts {
		if _, err := s.conv(part); err != nil {
			return fmt.Errorf("default %q: %w", s.def, err)
		}
	}
	return nil
}

// kind describes how to parse values of one type.
type kind struct {
	typ     reflect.Type
	conv    func(string) (reflect.Value, error)
	envFunc env.ParserFunc
	isBool  bool
	meta    string
	forms   string
	problem string
}

// kindOf returns how to parse a value of type t, in the order caarlos0/env
// uses: encoding.TextUnmarshaler first, then time.Duration and the basic
// kinds.
func kindOf(t reflect.Type) (kind, bool) {
	k := kind{typ: t, problem: "invalid value"}
	if reflect.PointerTo(t).Implements(textUnmarshalerType) {
		k.conv = func(s string) (reflect.Value, error) {
			p := reflect.New(t)
			err := p.Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s))
			return p.Elem(), err
		}
		k.meta = "VALUE"
		return k, true
	}
	switch {
	case t == durationType:
		k.conv = func(s string) (reflect.Value, error) {
			d, err := time.ParseDuration(s)
			return reflect.ValueOf(d), err
		}
		k.meta, k.problem = "DURATION", "not a duration"
		k.forms = "a duration such as 10s, 1m30s or 500ms (units ns, us, ms, s, m, h)"
	case t.Kind() == reflect.String:
		k.conv = func(s string) (reflect.Value, error) {
			return reflect.ValueOf(s).Convert(t), nil
		}
		k.meta = "STRING"
	case t.Kind() == reflect.Bool:
		k.conv = func(s string) (reflect.Value, error) {
			b, err := strconv.ParseBool(s)
			return reflect.ValueOf(b).Convert(t), err
		}
		k.isBool, k.problem = true, "not a boolean"
		k.forms = "true or false (or 1, 0, t, f)"
	case t.Kind() == reflect.Int:
		k.conv = func(s string) (reflect.Value, error) {
			n, err := strconv.ParseInt(s, 10, 0)
			return reflect.ValueOf(int(n)).Convert(t), err
		}
		k.meta, k.problem = "N", "not a whole number"
		k.forms = "a whole number in decimal, e.g. 100"
	default:
		return kind{}, false
	}
	conv := k.conv
	k.envFunc = func(s string) (any, error) {
		v, err := conv(s)
		if err != nil {
			return nil, err
		}
		return v.Interface(), nil
	}
	return k, true
}

func validFlagName(name string) bool {
	if name == "" || !isLetter(name[0]) || name[0] < 'a' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return !strings.HasSuffix(name, "-")
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
