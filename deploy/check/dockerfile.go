package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// image is what the tests read of a Dockerfile, as BuildKit's own parser understood it.
type image struct {
	// The global ARGs (before the first FROM) and their defaults.
	Args map[string]string `json:"args"`
	// Every stage's base, its ARGs' defaults and its RUN commands (continuation lines joined).
	Stages []stage `json:"stages"`
	// The final stage's runtime settings.
	Env         map[string]string `json:"env"`
	User        string            `json:"user"`
	Workdir     string            `json:"workdir"`
	Entrypoint  []string          `json:"entrypoint"`
	Cmd         []string          `json:"cmd"`
	Healthcheck []string          `json:"healthcheck"`
	StopSignal  string            `json:"stopsignal"`
	Expose      []string          `json:"expose"`
}

type stage struct {
	Name string            `json:"name"`
	Base string            `json:"base"`
	Args map[string]string `json:"args"`
	Runs []string          `json:"runs"`
}

// dockerfile parses a Dockerfile with BuildKit's parser and instruction decoder, with every lint rule
// BuildKit applies while decoding as an error, and prints what the image will be as JSON.
func dockerfile(path string, out io.Writer) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	parsed, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var problems []string
	for _, warning := range parsed.Warnings {
		problems = append(problems, warning.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, message string, location []parser.Range) {
		line := 0
		if len(location) > 0 {
			line = location[0].Start.Line
		}
		problems = append(problems, fmt.Sprintf("line %d: %s: %s", line, rule, message))
	}})
	stages, metaArgs, err := instructions.Parse(parsed.AST, lint)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s: %s", path, strings.Join(problems, "; "))
	}
	if len(stages) == 0 {
		return errors.New(path + ": no FROM")
	}
	result := image{Args: map[string]string{}, Env: map[string]string{}}
	for _, arg := range metaArgs {
		for _, pair := range arg.Args {
			if pair.Value != nil {
				result.Args[pair.Key] = *pair.Value
			}
		}
	}
	for _, s := range stages {
		described := stage{Name: s.Name, Base: s.BaseName, Args: map[string]string{}, Runs: []string{}}
		for _, command := range s.Commands {
			switch c := command.(type) {
			case *instructions.RunCommand:
				described.Runs = append(described.Runs, strings.Join(c.CmdLine, " "))
			case *instructions.ArgCommand:
				for _, pair := range c.Args {
					if pair.Value != nil {
						described.Args[pair.Key] = *pair.Value
					}
				}
			}
		}
		result.Stages = append(result.Stages, described)
	}
	describeFinal(stages[len(stages)-1], &result)
	encoded, err := json.MarshalIndent(result, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, string(encoded))
	return err
}

// describeFinal records the final stage's runtime settings; a later instruction overrides an earlier one,
// as in the built image.
func describeFinal(final instructions.Stage, result *image) {
	for _, command := range final.Commands {
		switch c := command.(type) {
		case *instructions.EnvCommand:
			for _, pair := range c.Env {
				result.Env[pair.Key] = pair.Value
			}
		case *instructions.UserCommand:
			result.User = c.User
		case *instructions.WorkdirCommand:
			result.Workdir = c.Path
		case *instructions.EntrypointCommand:
			result.Entrypoint = shellForm(c.ShellDependantCmdLine)
		case *instructions.CmdCommand:
			result.Cmd = shellForm(c.ShellDependantCmdLine)
		case *instructions.HealthCheckCommand:
			result.Healthcheck = c.Health.Test
		case *instructions.StopSignalCommand:
			result.StopSignal = c.Signal
		case *instructions.ExposeCommand:
			result.Expose = append(result.Expose, c.Ports...)
		}
	}
}

// shellForm is the command as the image runs it: a shell form is wrapped in `/bin/sh -c`.
func shellForm(line instructions.ShellDependantCmdLine) []string {
	if line.PrependShell {
		return append([]string{"/bin/sh", "-c"}, strings.Join(line.CmdLine, " "))
	}
	return line.CmdLine
}
