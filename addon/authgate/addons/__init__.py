"""The gate's mitmproxy addons, one concern each, composed in addon/auth.py; they share
one GateState (state.py). Everything they decide with and say is in the pure modules
one level up; every touch of mitmproxy internals is in ../mitmproxy_compat/."""
