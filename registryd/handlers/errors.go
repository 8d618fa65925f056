package handlers

import (
	"errors"

	"github.com/berth-dev/berth/registryd/errcode"
	"github.com/berth-dev/berth/registryd/storage"
)

// toError maps an error from the storage layer (or anything else) to the
// protocol error the client sees. ok is false for unexpected errors, which
// are reported as UNKNOWN and logged.
func toError(err error) (e *errcode.Error, ok bool) {
	if errors.As(err, &e) {
		return e, true
	}
	var oe *storage.OffsetError
	var me *storage.ManifestError
	switch {
	case errors.As(err, &oe):
		return errcode.ErrRangeInvalid.WithDetail(map[string]int64{"size": oe.Size, "requested": oe.Requested}), true
	case errors.As(err, &me):
		return errcode.ErrManifestInvalid.WithDetail(me.Reason), true
	case errors.Is(err, storage.ErrNameInvalid):
		return errcode.ErrNameInvalid, true
	case errors.Is(err, storage.ErrTagInvalid):
		return errcode.ErrTagInvalid, true
	case errors.Is(err, storage.ErrDigestInvalid), errors.Is(err, storage.ErrDigestMismatch):
		return errcode.ErrDigestInvalid, true
	case errors.Is(err, storage.ErrBlobUnknown):
		return errcode.ErrBlobUnknown, true
	case errors.Is(err, storage.ErrManifestUnknown), errors.Is(err, storage.ErrTagUnknown):
		return errcode.ErrManifestUnknown, true
	case errors.Is(err, storage.ErrRepositoryUnknown):
		return errcode.ErrNameUnknown, true
	case errors.Is(err, storage.ErrUploadUnknown):
		return errcode.ErrBlobUploadUnknown, true
	}
	return errcode.ErrUnknown, false
}
