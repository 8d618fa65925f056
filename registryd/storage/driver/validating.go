package driver

import (
	"context"
	"io"
)

// Validating wraps d so that every method checks its path arguments (and
// the context) before delegating. It is the one place path validation lives:
// constructors of drivers return their implementation wrapped by it, so an
// implementation may assume every path it receives is clean and absolute.
//
// Object paths must satisfy ValidPath; Stat, List and Walk also accept the
// root "/" (ValidDirPath). A failed check returns InvalidPathError naming
// the driver. A context that is already done fails the call with its error
// before the backend is touched.
//
// The wrapper hides any optional interface the implementation has, except
// BatchPutter, which it always has (falling back to PutContent); Unwrap
// returns the implementation for other type assertions.
func Validating(d StorageDriver) StorageDriver {
	if v, ok := d.(*validating); ok {
		return v
	}
	return &validating{d: d}
}

type validating struct{ d StorageDriver }

// Unwrap returns the wrapped driver.
func (v *validating) Unwrap() StorageDriver { return v.d }

func (v *validating) check(ctx context.Context, dir bool, paths ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, p := range paths {
		ok := ValidPath(p)
		if dir {
			ok = ValidDirPath(p)
		}
		if !ok {
			return InvalidPathError{Path: p, DriverName: v.d.Name()}
		}
	}
	return nil
}

func (v *validating) Name() string { return v.d.Name() }

func (v *validating) GetContent(ctx context.Context, path string) ([]byte, error) {
	if err := v.check(ctx, false, path); err != nil {
		return nil, err
	}
	return v.d.GetContent(ctx, path)
}

func (v *validating) PutContent(ctx context.Context, path string, content []byte) error {
	if err := v.check(ctx, false, path); err != nil {
		return err
	}
	return v.d.PutContent(ctx, path, content)
}

// PutContents checks every path, then stores the groups with the
// implementation's PutContents, or one PutContent after another when it
// has none.
func (v *validating) PutContents(ctx context.Context, groups ...[]ContentWrite) error {
	for _, g := range groups {
		for _, w := range g {
			if err := v.check(ctx, false, w.Path); err != nil {
				return err
			}
		}
	}
	if b, ok := v.d.(BatchPutter); ok {
		return b.PutContents(ctx, groups...)
	}
	return putEach(ctx, v.d, groups)
}

func (v *validating) Reader(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	if err := v.check(ctx, false, path); err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, InvalidOffsetError{Path: path, Offset: offset, DriverName: v.d.Name()}
	}
	return v.d.Reader(ctx, path, offset)
}

func (v *validating) Writer(ctx context.Context, path string, append bool) (FileWriter, error) {
	if err := v.check(ctx, false, path); err != nil {
		return nil, err
	}
	return v.d.Writer(ctx, path, append)
}

func (v *validating) Stat(ctx context.Context, path string) (FileInfo, error) {
	if err := v.check(ctx, true, path); err != nil {
		return nil, err
	}
	return v.d.Stat(ctx, path)
}

func (v *validating) List(ctx context.Context, path string) ([]string, error) {
	if err := v.check(ctx, true, path); err != nil {
		return nil, err
	}
	return v.d.List(ctx, path)
}

func (v *validating) Move(ctx context.Context, sourcePath, destPath string) error {
	if err := v.check(ctx, false, sourcePath, destPath); err != nil {
		return err
	}
	return v.d.Move(ctx, sourcePath, destPath)
}

func (v *validating) Delete(ctx context.Context, path string) error {
	if err := v.check(ctx, false, path); err != nil {
		return err
	}
	return v.d.Delete(ctx, path)
}

func (v *validating) RedirectURL(ctx context.Context, method string, path string) (string, error) {
	if err := v.check(ctx, false, path); err != nil {
		return "", err
	}
	return v.d.RedirectURL(ctx, method, path)
}

func (v *validating) Walk(ctx context.Context, path string, f WalkFn, options ...WalkOption) error {
	if err := v.check(ctx, true, path); err != nil {
		return err
	}
	return v.d.Walk(ctx, path, f, options...)
}
