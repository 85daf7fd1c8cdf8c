package samtemplate

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Pseudo parameters of the simulated deployment.
var pseudoParams = map[string]string{
	"AWS::AccountId": "123456789012",
	"AWS::Partition": "aws",
	"AWS::Region":    "us-east-1",
	"AWS::StackName": "zim-deleteconv",
	"AWS::URLSuffix": "amazonaws.com",
}

// refusedError is CloudFormation refusing a parameter set before it changes anything: a parameter constraint or a
// rule assertion failed.
type refusedError struct{ reason string }

func (e *refusedError) Error() string { return "deployment refused: " + e.reason }

// noValue is what Ref AWS::NoValue resolves to; maps and lists drop it.
type noValueType struct{}

var noValue = noValueType{}

// resource is one resource of a deployed stack, its properties resolved.
type resource struct {
	Type       string
	Properties map[string]any
}

// stack is the result of deploying a transformed template with one parameter set.
type stack struct {
	Params    map[string]string
	Resources map[string]resource // only the resources whose Condition holds
	Outputs   map[string]any
}

// ofType returns the logical ids of the resources of type typ, sorted.
func (s *stack) ofType(typ string) []string {
	var ids []string
	for id, r := range s.Resources {
		if r.Type == typ {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// deploy does what CloudFormation does with a (transformed, plain CloudFormation) template and parameter values
// before and while it creates resources, as far as the assertions need: parameter constraints, Rules, Conditions,
// intrinsic functions. A *refusedError means CloudFormation would not deploy this parameter set at all.
func deploy(tmpl map[string]any, given map[string]string) (*stack, error) {
	if tr, ok := tmpl["Transform"]; ok {
		return nil, fmt.Errorf("template still has Transform %v: deploy needs the translator's output", tr)
	}
	params, err := parameterValues(asMap(tmpl["Parameters"]), given)
	if err != nil {
		return nil, err
	}
	e := &evaluator{params: params, mappings: asMap(tmpl["Mappings"]), conditionDefs: asMap(tmpl["Conditions"]),
		conditions: map[string]bool{}}
	if err := e.checkRules(asMap(tmpl["Rules"])); err != nil {
		return nil, err
	}
	s := &stack{Params: params, Resources: map[string]resource{}, Outputs: map[string]any{}}
	e.resourceIDs = map[string]bool{}
	for id := range asMap(tmpl["Resources"]) {
		e.resourceIDs[id] = true
	}
	for id, raw := range asMap(tmpl["Resources"]) {
		r := asMap(raw)
		if c, ok := r["Condition"].(string); ok {
			holds, err := e.condition(c)
			if err != nil {
				return nil, fmt.Errorf("resource %s: %w", id, err)
			}
			if !holds {
				continue
			}
		}
		props, err := e.resolve(r["Properties"])
		if err != nil {
			return nil, fmt.Errorf("resource %s: %w", id, err)
		}
		if props == nil || props == noValue {
			props = map[string]any{}
		}
		s.Resources[id] = resource{Type: fmt.Sprint(r["Type"]), Properties: props.(map[string]any)}
	}
	for name, raw := range asMap(tmpl["Outputs"]) {
		o := asMap(raw)
		if c, ok := o["Condition"].(string); ok {
			holds, err := e.condition(c)
			if err != nil {
				return nil, fmt.Errorf("output %s: %w", name, err)
			}
			if !holds {
				continue
			}
		}
		v, err := e.resolve(o["Value"])
		if err != nil {
			return nil, fmt.Errorf("output %s: %w", name, err)
		}
		s.Outputs[name] = v
	}
	return s, nil
}

// parameterValues applies defaults and the constraints CloudFormation checks before deploying.
func parameterValues(defs map[string]any, given map[string]string) (map[string]string, error) {
	for name := range given {
		if _, ok := defs[name]; !ok {
			return nil, fmt.Errorf("parameter %s is not declared by the template", name)
		}
	}
	values := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(defs)) {
		def := asMap(defs[name])
		v, ok := given[name]
		if !ok {
			d, hasDefault := def["Default"]
			if !hasDefault {
				return nil, &refusedError{fmt.Sprintf("parameter %s has no value and no default", name)}
			}
			v = scalar(d)
		}
		if allowed, ok := def["AllowedValues"].([]any); ok {
			if !slices.ContainsFunc(allowed, func(a any) bool { return scalar(a) == v }) {
				return nil, &refusedError{fmt.Sprintf("parameter %s=%q is not one of its AllowedValues", name, v)}
			}
		}
		if p, ok := def["AllowedPattern"].(string); ok {
			re, err := regexp.Compile("^(?:" + p + ")$")
			if err != nil {
				return nil, fmt.Errorf("parameter %s: AllowedPattern: %w", name, err)
			}
			if !re.MatchString(v) {
				return nil, &refusedError{fmt.Sprintf("parameter %s=%q does not match its AllowedPattern", name, v)}
			}
		}
		if def["Type"] == "Number" {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return nil, &refusedError{fmt.Sprintf("parameter %s=%q is not a number", name, v)}
			}
			if lo, ok := def["MinValue"]; ok && n < number(lo) {
				return nil, &refusedError{fmt.Sprintf("parameter %s=%s is below its MinValue", name, v)}
			}
			if hi, ok := def["MaxValue"]; ok && n > number(hi) {
				return nil, &refusedError{fmt.Sprintf("parameter %s=%s is above its MaxValue", name, v)}
			}
		}
		values[name] = v
	}
	return values, nil
}

type evaluator struct {
	params        map[string]string
	mappings      map[string]any
	conditionDefs map[string]any
	conditions    map[string]bool
	resourceIDs   map[string]bool
}

// checkRules evaluates the template's Rules section; a failed assertion refuses the deployment.
func (e *evaluator) checkRules(rules map[string]any) error {
	for _, name := range slices.Sorted(maps.Keys(rules)) {
		rule := asMap(rules[name])
		if c, ok := rule["RuleCondition"]; ok {
			holds, err := e.boolean(c)
			if err != nil {
				return fmt.Errorf("rule %s: RuleCondition: %w", name, err)
			}
			if !holds {
				continue
			}
		}
		for _, a := range asList(rule["Assertions"]) {
			holds, err := e.boolean(asMap(a)["Assert"])
			if err != nil {
				return fmt.Errorf("rule %s: %w", name, err)
			}
			if !holds {
				return &refusedError{fmt.Sprintf("rule %s: %v", name, asMap(a)["AssertDescription"])}
			}
		}
	}
	return nil
}

func (e *evaluator) condition(name string) (bool, error) {
	if v, ok := e.conditions[name]; ok {
		return v, nil
	}
	def, ok := e.conditionDefs[name]
	if !ok {
		return false, fmt.Errorf("unknown condition %q", name)
	}
	v, err := e.boolean(def)
	if err != nil {
		return false, fmt.Errorf("condition %s: %w", name, err)
	}
	e.conditions[name] = v
	return v, nil
}

// boolean evaluates a condition or rule function: Fn::Equals, Fn::Not, Fn::And, Fn::Or, Fn::Contains, Condition.
func (e *evaluator) boolean(v any) (bool, error) {
	fn, arg, ok := intrinsic(v)
	if !ok {
		return false, fmt.Errorf("not a condition function: %v", v)
	}
	switch fn {
	case "Condition":
		return e.condition(fmt.Sprint(arg))
	case "Fn::Not":
		args := asList(arg)
		if len(args) != 1 {
			return false, fmt.Errorf("Fn::Not takes one condition: %v", arg)
		}
		b, err := e.boolean(args[0])
		return !b, err
	case "Fn::And", "Fn::Or":
		for _, c := range asList(arg) {
			b, err := e.boolean(c)
			if err != nil {
				return false, err
			}
			if b == (fn == "Fn::Or") {
				return b, nil
			}
		}
		return fn == "Fn::And", nil
	case "Fn::Equals":
		args := asList(arg)
		if len(args) != 2 {
			return false, fmt.Errorf("Fn::Equals takes two values: %v", arg)
		}
		a, err := e.resolve(args[0])
		if err != nil {
			return false, err
		}
		b, err := e.resolve(args[1])
		if err != nil {
			return false, err
		}
		return scalar(a) == scalar(b), nil
	case "Fn::Contains":
		args := asList(arg)
		if len(args) != 2 {
			return false, fmt.Errorf("Fn::Contains takes a list and a value: %v", arg)
		}
		list, err := e.resolve(args[0])
		if err != nil {
			return false, err
		}
		x, err := e.resolve(args[1])
		if err != nil {
			return false, err
		}
		return slices.ContainsFunc(asList(list), func(y any) bool { return scalar(y) == scalar(x) }), nil
	}
	return false, fmt.Errorf("unsupported condition function %s", fn)
}

var subVar = regexp.MustCompile(`\$\{([^}!][^}]*)\}`)

// resolve evaluates the intrinsic functions in v.
func (e *evaluator) resolve(v any) (any, error) {
	if fn, arg, ok := intrinsic(v); ok && fn != "Condition" {
		return e.function(fn, arg)
	}
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			r, err := e.resolve(x)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			if r != noValue {
				out[k] = r
			}
		}
		return out, nil
	case []any:
		out := []any{}
		for i, x := range v {
			r, err := e.resolve(x)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			if r != noValue {
				out = append(out, r)
			}
		}
		return out, nil
	}
	return v, nil
}

func (e *evaluator) ref(name string) (any, error) {
	if name == "AWS::NoValue" {
		return noValue, nil
	}
	if v, ok := e.params[name]; ok {
		return v, nil
	}
	if v, ok := pseudoParams[name]; ok {
		return v, nil
	}
	if e.resourceIDs[name] {
		return "{Ref:" + name + "}", nil
	}
	return nil, fmt.Errorf("Ref to unknown name %q", name)
}

func (e *evaluator) function(fn string, arg any) (any, error) {
	switch fn {
	case "Ref":
		return e.ref(fmt.Sprint(arg))
	case "Fn::GetAtt":
		parts := asList(arg)
		if s, ok := arg.(string); ok {
			parts = []any{}
			for p := range strings.SplitSeq(s, ".") {
				parts = append(parts, p)
			}
		}
		if len(parts) < 2 || !e.resourceIDs[fmt.Sprint(parts[0])] {
			return nil, fmt.Errorf("Fn::GetAtt of unknown resource: %v", arg)
		}
		return fmt.Sprintf("{GetAtt:%v.%v}", parts[0], parts[1]), nil
	case "Fn::If":
		args := asList(arg)
		if len(args) != 3 {
			return nil, fmt.Errorf("Fn::If takes a condition and two values: %v", arg)
		}
		holds, err := e.condition(fmt.Sprint(args[0]))
		if err != nil {
			return nil, err
		}
		if holds {
			return e.resolve(args[1])
		}
		return e.resolve(args[2])
	case "Fn::FindInMap":
		args, err := e.resolve(arg)
		if err != nil {
			return nil, err
		}
		keys := asList(args)
		if len(keys) != 3 {
			return nil, fmt.Errorf("Fn::FindInMap takes three keys: %v", arg)
		}
		top, ok := asMap(e.mappings[scalar(keys[0])])[scalar(keys[1])]
		if !ok {
			return nil, fmt.Errorf("Fn::FindInMap: no %v/%v", keys[0], keys[1])
		}
		v, ok := asMap(top)[scalar(keys[2])]
		if !ok {
			return nil, fmt.Errorf("Fn::FindInMap: no %v/%v/%v", keys[0], keys[1], keys[2])
		}
		return v, nil
	case "Fn::Select":
		args := asList(arg)
		if len(args) != 2 {
			return nil, fmt.Errorf("Fn::Select takes an index and a list: %v", arg)
		}
		idx, err := e.resolve(args[0])
		if err != nil {
			return nil, err
		}
		list, err := e.resolve(args[1])
		if err != nil {
			return nil, err
		}
		i, err := strconv.Atoi(scalar(idx))
		items := asList(list)
		if err != nil || i < 0 || i >= len(items) {
			return nil, fmt.Errorf("Fn::Select: index %v out of the list's %d items", idx, len(items))
		}
		return items[i], nil
	case "Fn::Split":
		args, err := e.resolve(arg)
		if err != nil {
			return nil, err
		}
		parts := asList(args)
		if len(parts) != 2 {
			return nil, fmt.Errorf("Fn::Split takes a delimiter and a string: %v", arg)
		}
		out := []any{}
		for p := range strings.SplitSeq(scalar(parts[1]), scalar(parts[0])) {
			out = append(out, p)
		}
		return out, nil
	case "Fn::Join":
		args, err := e.resolve(arg)
		if err != nil {
			return nil, err
		}
		parts := asList(args)
		if len(parts) != 2 {
			return nil, fmt.Errorf("Fn::Join takes a delimiter and a list: %v", arg)
		}
		var ss []string
		for _, p := range asList(parts[1]) {
			ss = append(ss, scalar(p))
		}
		return strings.Join(ss, scalar(parts[0])), nil
	case "Fn::Sub":
		s, ok := arg.(string)
		if !ok {
			return nil, fmt.Errorf("Fn::Sub with a variable map is not supported here: %v", arg)
		}
		var subErr error
		out := subVar.ReplaceAllStringFunc(s, func(m string) string {
			name := m[2 : len(m)-1]
			var v any
			var err error
			if id, attr, isAtt := strings.Cut(name, "."); isAtt {
				v, err = e.function("Fn::GetAtt", []any{id, attr})
			} else {
				v, err = e.ref(name)
			}
			if err != nil {
				subErr = errors.Join(subErr, err)
			}
			return scalar(v)
		})
		return strings.ReplaceAll(out, "${!", "${"), subErr
	}
	return nil, fmt.Errorf("unsupported intrinsic function %s", fn)
}

// intrinsic reports whether v is a one-key map naming an intrinsic function.
func intrinsic(v any) (fn string, arg any, ok bool) {
	m, isMap := v.(map[string]any)
	if !isMap || len(m) != 1 {
		return "", nil, false
	}
	for k, a := range m {
		if k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::") {
			return k, a, true
		}
	}
	return "", nil, false
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// scalar renders a JSON scalar the way CloudFormation compares parameter values: as a string.
func scalar(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// number reads a JSON number or a numeric string (a Ref to a parameter); anything else is NaN-like -1.
func number(v any) float64 {
	f, err := strconv.ParseFloat(scalar(v), 64)
	if err != nil {
		return -1
	}
	return f
}
