package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// withExamples is a command's help template: cli's own, base
// (cli.CommandHelpTemplate, or cli.SubcommandHelpTemplate for a command
// with subcommands), and an EXAMPLES section, which cli's templates lack.
// Each example is a command line, optionally followed by "  # comment".
func withExamples(base string, examples ...string) string {
	return base + "\nEXAMPLES:\n   " + strings.Join(examples, "\n   ") + "\n"
}

// completionCommand prints a shell's completion script. The scripts ask
// the binary itself (cli's --generate-bash-completion) for the commands
// and flags that fit; bash's and zsh's are urfave/cli's
// autocomplete/bash_autocomplete and zsh_autocomplete, which the module
// ships as files, not Go, so they are copied here; fish's cli writes.
func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script for batchlab (bash, zsh or fish)",
		ArgsUsage: "bash|zsh|fish",
		CustomHelpTemplate: withExamples(cli.CommandHelpTemplate,
			"source <(batchlab completion bash)       # bash, this shell; add it to ~/.bashrc to keep it",
			"batchlab completion zsh > ~/.zfunc/_batchlab   # zsh, with ~/.zfunc in $fpath",
			"batchlab completion fish > ~/.config/fish/completions/batchlab.fish"),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("completion takes one argument, the shell: bash, zsh or fish (got %d)", c.NArg())
			}
			var script string
			switch shell := c.Args().First(); shell {
			case "bash":
				script = bashCompletion
			case "zsh":
				script = zshCompletion
			case "fish":
				var err error
				if script, err = c.App.ToFishCompletion(); err != nil {
					return err
				}
			default:
				return fmt.Errorf("completion: no script for %q (want bash, zsh or fish)", shell)
			}
			_, err := fmt.Fprintln(c.App.Writer, strings.ReplaceAll(script, "$PROG", c.App.Name))
			return err
		},
	}
}

// From urfave/cli v2.27.7, autocomplete/bash_autocomplete (MIT licence),
// with PROG fixed.
const bashCompletion = `_cli_init_completion() {
  COMPREPLY=()
  _get_comp_words_by_ref "$@" cur prev words cword
}

_cli_bash_autocomplete() {
  if [[ "${COMP_WORDS[0]}" != "source" ]]; then
    local cur opts base words
    COMPREPLY=()
    cur="${COMP_WORDS[COMP_CWORD]}"
    if declare -F _init_completion >/dev/null 2>&1; then
      _init_completion -n "=:" || return
    else
      _cli_init_completion -n "=:" || return
    fi
    words=("${words[@]:0:$cword}")
    if [[ "$cur" == "-"* ]]; then
      requestComp="${words[*]} ${cur} --generate-bash-completion"
    else
      requestComp="${words[*]} --generate-bash-completion"
    fi
    opts=$(eval "${requestComp}" 2>/dev/null)
    COMPREPLY=($(compgen -W "${opts}" -- ${cur}))
    return 0
  fi
}

complete -o bashdefault -o default -o nospace -F _cli_bash_autocomplete $PROG`

// From urfave/cli v2.27.7, autocomplete/zsh_autocomplete (MIT licence).
const zshCompletion = `#compdef $PROG

_cli_zsh_autocomplete() {
  local -a opts
  local cur
  cur=${words[-1]}
  if [[ "$cur" == "-"* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion)}")
  fi

  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}

compdef _cli_zsh_autocomplete $PROG`
