# bash completion for the portcullis tunnel: commands, flags, and the
# values of file and enumerated flags.
# Install as /usr/share/bash-completion/completions/tunnel (make install
# does), or source it from ~/.bashrc.
#
# The flag lists follow `tunnel COMMAND --help`; a test keeps them in step.

_tunnel() {
	local cur prev
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD-1]}

	local commands="forward nc bench login status whoami help version"
	local forward_flags="--gateway --cert --key --key-pass-file --ca --server-name --direct --connect-timeout --pin --gateway-allow --log-level --log-format -L --local --lazy --renew --same-user --refusal --admin --dir --help"
	local nc_flags="--gateway --cert --key --key-pass-file --ca --server-name --direct --connect-timeout --pin --gateway-allow --log-level --log-format --dir --help"
	local login_flags="--enroll --ca --gpg-key --pgp-key --gpg --ttl --dir --help"
	local status_flags="--dir --help"
	local bench_flags="--gateway --cert --key --key-pass-file --ca --server-name --direct --connect-timeout --pin --gateway-allow --log-level --log-format --mode --route -c --concurrency -d --duration -n --count --json --source --size --resume --sessions --streams --direction --op-timeout --unsafe-plaintext --help"

	case $prev in
	--cert|--key|--key-pass-file|--ca|--pgp-key)
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	--dir)
		COMPREPLY=($(compgen -d -- "$cur"))
		return
		;;
	--gpg)
		COMPREPLY=($(compgen -c -- "$cur"))
		return
		;;
	--log-level)
		COMPREPLY=($(compgen -W "debug info warn error" -- "$cur"))
		return
		;;
	--log-format)
		COMPREPLY=($(compgen -W "console json" -- "$cur"))
		return
		;;
	--mode)
		COMPREPLY=($(compgen -W "handshake streams throughput deny" -- "$cur"))
		return
		;;
	--direction)
		COMPREPLY=($(compgen -W "up down both" -- "$cur"))
		return
		;;
	--gateway|--server-name|--connect-timeout|--pin|--gateway-allow|-L|--local|--admin|--route|-c|--concurrency|-d|--duration|-n|--count|--source|--size|--sessions|--streams|--op-timeout|--enroll|--gpg-key|--ttl)
		return # a value of the user's own
		;;
	esac

	if [[ $COMP_CWORD -eq 1 ]]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--help --version" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$commands" -- "$cur"))
		fi
		return
	fi
	local flags
	case ${COMP_WORDS[1]} in
	forward) flags=$forward_flags ;;
	nc) flags=$nc_flags ;;
	bench) flags=$bench_flags ;;
	login) flags=$login_flags ;;
	status|whoami) flags=$status_flags ;;
	*) return ;;
	esac
	COMPREPLY=($(compgen -W "$flags" -- "$cur"))
}

complete -F _tunnel tunnel
