package samtemplate

import (
	"errors"
	"fmt"
	"maps"
	"math"
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
	// DeletionPolicy and UpdateReplacePolicy as written; empty means CloudFormation's default (Delete).
	DeletionPolicy, UpdateReplacePolicy string
}

// stack is a transformed template deployed with one parameter set.
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

// deploy does what CloudFormation does with a transformed template before and while it creates resources, as far
// as the assertions need: parameter constraints, Rules, Conditions and the intrinsic functions the template uses.
// Resources stay symbolic ("{Ref:Queue}", "{GetAtt:Queue.Arn}") so that wiring can be asserted. A *refusedError
// means CloudFormation would not deploy this parameter set at all.
func deploy(tmpl map[string]any, given map[string]string) (*stack, error) {
	if tr, ok := tmpl["Transform"]; ok {
		return nil, fmt.Errorf("template still has Transform %v: deploy needs the translator's output", tr)
	}
	params, err := parameterValues(asMap(tmpl["Parameters"]), given)
	if err != nil {
		return nil, err
	}
	e := &evaluator{params: params, mappings: asMap(tmpl["Mappings"]), conditionDefs: asMap(tmpl["Conditions"]),
		conditions: map[string]bool{}, resources: map[string]bool{}}
	if err := e.checkRules(asMap(tmpl["Rules"])); err != nil {
		return nil, err
	}
	for id := range asMap(tmpl["Resources"]) {
		e.resources[id] = true
	}
	s := &stack{Params: params, Resources: map[string]resource{}, Outputs: map[string]any{}}
	for _, section := range []string{"Resources", "Outputs"} {
		for id, raw := range asMap(tmpl[section]) {
			r := asMap(raw)
			if c, ok := r["Condition"].(string); ok {
				if holds, err := e.condition(c); err != nil || !holds {
					if err != nil {
						return nil, fmt.Errorf("%s %s: %w", section, id, err)
					}
					continue
				}
			}
			if section == "Outputs" {
				v, err := e.resolve(r["Value"])
				if err != nil {
					return nil, fmt.Errorf("output %s: %w", id, err)
				}
				s.Outputs[id] = v
				continue
			}
			props, err := e.resolve(r["Properties"])
			if err != nil {
				return nil, fmt.Errorf("resource %s: %w", id, err)
			}
			p, _ := props.(map[string]any)
			s.Resources[id] = resource{Type: fmt.Sprint(r["Type"]), Properties: p,
				DeletionPolicy: scalar(r["DeletionPolicy"]), UpdateReplacePolicy: scalar(r["UpdateReplacePolicy"])}
		}
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
		if allowed, ok := def["AllowedValues"].([]any); ok && !slices.ContainsFunc(allowed, func(a any) bool { return scalar(a) == v }) {
			return nil, &refusedError{fmt.Sprintf("parameter %s=%q is not one of its AllowedValues", name, v)}
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
		if n := def["MaxLength"]; n != nil && float64(len(v)) > number(n) {
			return nil, &refusedError{fmt.Sprintf("parameter %s=%q is longer than its MaxLength", name, v)}
		}
		if n := def["MinLength"]; n != nil && float64(len(v)) < number(n) {
			return nil, &refusedError{fmt.Sprintf("parameter %s=%q is shorter than its MinLength", name, v)}
		}
		if def["Type"] == "Number" {
			n, err := strconv.ParseFloat(v, 64)
			switch {
			case err != nil:
				return nil, &refusedError{fmt.Sprintf("parameter %s=%q is not a number", name, v)}
			case def["MinValue"] != nil && n < number(def["MinValue"]):
				return nil, &refusedError{fmt.Sprintf("parameter %s=%s is below its MinValue", name, v)}
			case def["MaxValue"] != nil && n > number(def["MaxValue"]):
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
	resources     map[string]bool
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

// boolean evaluates the condition and rule functions the template uses: Condition, Fn::Not, Fn::Or, Fn::Equals
// and Fn::Contains.
func (e *evaluator) boolean(v any) (bool, error) {
	fn, arg, ok := intrinsic(v)
	if !ok {
		return false, fmt.Errorf("not a condition function: %v", v)
	}
	if fn == "Condition" {
		return e.condition(fmt.Sprint(arg))
	}
	args := asList(arg)
	switch {
	case fn == "Fn::Not" && len(args) == 1:
		b, err := e.boolean(args[0])
		return !b, err
	case fn == "Fn::Or" && len(args) >= 2:
		for _, c := range args {
			if b, err := e.boolean(c); err != nil || b {
				return b, err
			}
		}
		return false, nil
	case (fn == "Fn::Equals" || fn == "Fn::Contains") && len(args) == 2:
		a, err := e.resolve(args[0])
		if err != nil {
			return false, err
		}
		b, err := e.resolve(args[1])
		if err != nil {
			return false, err
		}
		if fn == "Fn::Equals" {
			return scalar(a) == scalar(b), nil
		}
		return slices.ContainsFunc(asList(a), func(x any) bool { return scalar(x) == scalar(b) }), nil
	}
	return false, fmt.Errorf("unsupported condition function %s: %v", fn, arg)
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
	if e.resources[name] {
		return "{Ref:" + name + "}", nil
	}
	return nil, fmt.Errorf("Ref to unknown name %q", name)
}

func (e *evaluator) getAtt(id, attr string) (any, error) {
	if !e.resources[id] {
		return nil, fmt.Errorf("Fn::GetAtt of unknown resource %s", id)
	}
	return "{GetAtt:" + id + "." + attr + "}", nil
}

// function evaluates the intrinsic functions the transformed template uses.
func (e *evaluator) function(fn string, arg any) (any, error) {
	if fn == "Ref" {
		return e.ref(fmt.Sprint(arg))
	}
	if fn == "Fn::Sub" {
		s, ok := arg.(string)
		if !ok {
			return nil, fmt.Errorf("Fn::Sub with a variable map is not supported here: %v", arg)
		}
		var errs error
		out := subVar.ReplaceAllStringFunc(s, func(m string) string {
			var v any
			var err error
			if id, attr, isAtt := strings.Cut(m[2:len(m)-1], "."); isAtt {
				v, err = e.getAtt(id, attr)
			} else {
				v, err = e.ref(id)
			}
			errs = errors.Join(errs, err)
			return scalar(v)
		})
		return strings.ReplaceAll(out, "${!", "${"), errs
	}
	if fn == "Fn::If" {
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
	}
	// The others take their arguments resolved.
	resolved, err := e.resolve(arg)
	if err != nil {
		return nil, err
	}
	args := asList(resolved)
	switch {
	case fn == "Fn::GetAtt" && len(args) == 2:
		return e.getAtt(scalar(args[0]), scalar(args[1]))
	case fn == "Fn::FindInMap" && len(args) == 3:
		v, ok := asMap(asMap(e.mappings[scalar(args[0])])[scalar(args[1])])[scalar(args[2])]
		if !ok {
			// CloudFormation refuses the template: "Unable to get mapping".
			return nil, &refusedError{fmt.Sprintf("Fn::FindInMap: no %v/%v/%v", args[0], args[1], args[2])}
		}
		return v, nil
	case fn == "Fn::Select" && len(args) == 2:
		i, err := strconv.Atoi(scalar(args[0]))
		items := asList(args[1])
		if err != nil || i < 0 || i >= len(items) {
			return nil, &refusedError{fmt.Sprintf("Fn::Select: index %v out of the list's %d items", args[0], len(items))}
		}
		return items[i], nil
	case fn == "Fn::Split" && len(args) == 2:
		var out []any
		for p := range strings.SplitSeq(scalar(args[1]), scalar(args[0])) {
			out = append(out, p)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported intrinsic function %s: %v", fn, arg)
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

// number reads a JSON number or a numeric string (a Ref to a parameter); anything else is NaN, which fails every
// comparison.
func number(v any) float64 {
	f, err := strconv.ParseFloat(scalar(v), 64)
	if err != nil {
		return math.NaN()
	}
	return f
}
