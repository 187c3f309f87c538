"""Sign-in, sign-out and the tenant switcher (local passwords)."""
