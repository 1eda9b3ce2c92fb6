package ratchet

import "errors"

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// anySentinel reports whether err matches one of the package's sentinels.
func anySentinel(err error) bool {
	for _, s := range []error{ErrDecrypt, ErrMalformed, ErrUnsupportedVersion, ErrDuplicate,
		ErrTooManySkipped, ErrExpiredKey, ErrLowOrderPoint, ErrNoSession, ErrTooLarge} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
