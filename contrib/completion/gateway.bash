# bash completion for the portcullis gateway: commands, pki and enroll
# commands, flags, and the values of file, directory and enumerated flags.
# Install as /usr/share/bash-completion/completions/gateway (make install
# does), or source it from ~/.bashrc.
#
# The flag lists follow `gateway COMMAND --help`; a test keeps them in step.

_gateway() {
	local cur prev
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD-1]}

	local commands="run explain pki enroll help version"
	local pki_commands="init issue sign revoke crl show"
	local enroll_commands="serve"

	local run_flags="--listen --cert --key --key-pass-file --ca --crl --allow --allow-file --route --default-route --allow-id --policy --admin --ready-despite-reload-failure --log-level --log-format --handshake-timeout --idle-timeout --dial-timeout --drain-timeout --watch-interval --max-conns --max-handshakes --max-streams --hello-timeout --max-pending --max-pending-per-addr --max-pending-per-prefix --prefix-v4 --prefix-v6 --max-session-memory --conn-rate-per-addr --conn-rate-per-prefix --handshake-rate-per-addr --handshake-rate-per-prefix --abuse-hold --abuse-hold-max --max-sessions-per-identity --max-streams-per-identity --stream-rate-per-identity --max-conn-lifetime --route-proxy --trusted-proxy --strict-perms --no-landlock --help"
	local explain_flags="--policy --allow --allow-file --route --allow-id --default-route --ca --crl --cert --from --only --help"
	local pki_init_flags="--dir --name --key-type --intermediate --ttl --crl-validity --force --help"
	local pki_issue_flags="--dir --server --client --name --dns --ip --uri --email --ou --o --key-type --ttl --force --help"
	local pki_sign_flags="--dir --csr --server --client --name --dns --ip --uri --email --ou --o --ttl --out --force --help"
	local pki_revoke_flags="--dir --serial --cert --reason --help"
	local pki_crl_flags="--dir --validity --help"
	local pki_show_flags="--help"
	local enroll_serve_flags="--dir --listen --cert --key --users-keyring --admin-keyring --users-map --org --ttl --max-ttl --log-level --log-format --help"

	# The value of the flag before the cursor.
	case $prev in
	--cert|--key|--key-pass-file|--ca|--crl|--allow-file|--policy|--csr|--out|--users-keyring|--admin-keyring|--users-map)
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	--dir)
		COMPREPLY=($(compgen -d -- "$cur"))
		return
		;;
	--log-level)
		COMPREPLY=($(compgen -W "debug info warn error" -- "$cur"))
		return
		;;
	--log-format)
		COMPREPLY=($(compgen -W "json console" -- "$cur"))
		return
		;;
	--key-type)
		COMPREPLY=($(compgen -W "ecdsa-p256 ecdsa-p384 rsa-2048 rsa-3072 rsa-4096 ed25519" -- "$cur"))
		return
		;;
	--reason)
		COMPREPLY=($(compgen -W "unspecified keyCompromise cACompromise affiliationChanged superseded cessationOfOperation certificateHold privilegeWithdrawn aACompromise" -- "$cur"))
		return
		;;
	--listen|--allow|--route|--default-route|--allow-id|--admin|--handshake-timeout|--idle-timeout|--dial-timeout|--drain-timeout|--watch-interval|--max-conns|--max-handshakes|--max-streams|--hello-timeout|--max-pending|--max-pending-per-addr|--max-pending-per-prefix|--prefix-v4|--prefix-v6|--max-session-memory|--conn-rate-per-addr|--conn-rate-per-prefix|--handshake-rate-per-addr|--handshake-rate-per-prefix|--abuse-hold|--abuse-hold-max|--max-sessions-per-identity|--max-streams-per-identity|--stream-rate-per-identity|--max-conn-lifetime|--route-proxy|--trusted-proxy|--from|--only|--name|--ttl|--crl-validity|--dns|--ip|--uri|--email|--ou|--o|--serial|--validity|--org|--max-ttl)
		return # a value of the user's own
		;;
	esac

	# The command: the first word unless it is a flag ("gateway --listen ..."
	# is "gateway run --listen ..."); for pki and enroll, the word after it.
	local cmd=run sub=
	if [[ $COMP_CWORD -gt 1 && ${COMP_WORDS[1]} != -* ]]; then
		cmd=${COMP_WORDS[1]}
	fi
	if [[ ($cmd == pki || $cmd == enroll) && $COMP_CWORD -gt 2 ]]; then
		sub=${COMP_WORDS[2]}
	fi

	if [[ $COMP_CWORD -eq 1 && $cur != -* ]]; then
		COMPREPLY=($(compgen -W "$commands" -- "$cur"))
		return
	fi
	if [[ $cmd == pki && $COMP_CWORD -eq 2 ]]; then
		COMPREPLY=($(compgen -W "$pki_commands" -- "$cur"))
		return
	fi
	if [[ $cmd == enroll && $COMP_CWORD -eq 2 ]]; then
		COMPREPLY=($(compgen -W "$enroll_commands" -- "$cur"))
		return
	fi

	local flags
	case $cmd in
	run) flags=$run_flags ;;
	explain) flags=$explain_flags ;;
	pki)
		case $sub in
		init) flags=$pki_init_flags ;;
		issue) flags=$pki_issue_flags ;;
		sign) flags=$pki_sign_flags ;;
		revoke) flags=$pki_revoke_flags ;;
		crl) flags=$pki_crl_flags ;;
		show)
			if [[ $cur != -* ]]; then
				COMPREPLY=($(compgen -f -- "$cur")) # the file to show
				return
			fi
			flags=$pki_show_flags
			;;
		esac
		;;
	enroll)
		case $sub in
		serve) flags=$enroll_serve_flags ;;
		esac
		;;
	esac
	if [[ $cmd == run && $COMP_CWORD -eq 1 ]]; then
		flags="$flags --version"
	fi
	COMPREPLY=($(compgen -W "$flags" -- "$cur"))
}

complete -F _gateway gateway
