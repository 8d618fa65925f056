package storage

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Manifest media types registryd knows.
const (
	MediaTypeOCIManifest    = v1.MediaTypeImageManifest
	MediaTypeOCIIndex       = v1.MediaTypeImageIndex
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// IsIndexMediaType reports whether mt is an index or manifest list.
func IsIndexMediaType(mt string) bool { return mt == MediaTypeOCIIndex || mt == MediaTypeDockerList }

// Manifest is the union of the fields of the manifest kinds registryd
// stores: OCI image manifest (including artifacts), OCI image index,
// Docker schema2 manifest and Docker manifest list.
type Manifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType,omitempty"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        *v1.Descriptor    `json:"config,omitempty"`
	Layers        []v1.Descriptor   `json:"layers,omitempty"`
	Manifests     []v1.Descriptor   `json:"manifests,omitempty"`
	Subject       *v1.Descriptor    `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// ManifestError explains why a manifest is refused.
type ManifestError struct{ Reason string }

func (e *ManifestError) Error() string { return "invalid manifest: " + e.Reason }

// ParseManifest decodes content and works out its media type. contentType
// is the type the client declared (empty when reading back from storage).
//
// The media type is the body's mediaType field; an OCI manifest or index
// may omit it, and is then recognised by its shape ("manifests" means an
// index) or by contentType. A declared contentType that contradicts the
// body's mediaType is an error. Schema 1 manifests are refused, as in
// Distribution v3.
func ParseManifest(content []byte, contentType string) (*Manifest, string, error) {
	var m Manifest
	if err := json.Unmarshal(content, &m); err != nil {
		return nil, "", &ManifestError{Reason: err.Error()}
	}
	var raw map[string]json.RawMessage
	_ = json.Unmarshal(content, &raw)
	if m.SchemaVersion != 2 {
		return nil, "", &ManifestError{Reason: fmt.Sprintf("unsupported schemaVersion %d", m.SchemaVersion)}
	}
	declared := strings.TrimSpace(strings.Split(contentType, ";")[0])
	mt := m.MediaType
	switch {
	case mt != "":
		if declared != "" && declared != mt {
			return nil, "", &ManifestError{Reason: fmt.Sprintf("Content-Type %q does not match mediaType %q", declared, mt)}
		}
	case declared == MediaTypeOCIManifest || declared == MediaTypeOCIIndex:
		mt = declared
	case declared != "" && declared != "application/json" && declared != "application/octet-stream":
		return nil, "", &ManifestError{Reason: fmt.Sprintf("manifest of Content-Type %q has no mediaType", declared)}
	case raw["manifests"] != nil:
		mt = MediaTypeOCIIndex
	default:
		mt = MediaTypeOCIManifest
	}
	switch mt {
	case MediaTypeOCIManifest, MediaTypeDockerManifest:
		if m.Config == nil {
			return nil, "", &ManifestError{Reason: "manifest has no config"}
		}
		if raw["manifests"] != nil {
			return nil, "", &ManifestError{Reason: "image manifest has a manifests field"}
		}
		if mt == MediaTypeDockerManifest && m.Subject != nil {
			return nil, "", &ManifestError{Reason: "docker manifest has a subject"}
		}
	case MediaTypeOCIIndex, MediaTypeDockerList:
		if m.Config != nil || raw["layers"] != nil {
			return nil, "", &ManifestError{Reason: "index has config or layers"}
		}
	default:
		return nil, "", &ManifestError{Reason: fmt.Sprintf("unsupported manifest media type %q", mt)}
	}
	for _, d := range m.References() {
		if err := d.Digest.Validate(); err != nil {
			return nil, "", &ManifestError{Reason: fmt.Sprintf("descriptor digest %q: %v", d.Digest, err)}
		}
		if d.Size < 0 {
			return nil, "", &ManifestError{Reason: fmt.Sprintf("descriptor %s has a negative size", d.Digest)}
		}
	}
	if m.Subject != nil {
		if err := m.Subject.Digest.Validate(); err != nil {
			return nil, "", &ManifestError{Reason: fmt.Sprintf("subject digest %q: %v", m.Subject.Digest, err)}
		}
	}
	return &m, mt, nil
}

// ManifestLinks is the content a stored manifest names, whatever its
// kind: what garbage collection follows to mark.
type ManifestLinks struct {
	// Blobs are the config and layers of an image manifest (OCI or
	// Docker), and the fsLayers of a schema 1 manifest.
	Blobs []digest.Digest
	// Children are the entries of an index or manifest list.
	Children []digest.Digest
	// Subject is the OCI subject; "" when there is none.
	Subject digest.Digest
}

// storedManifest is every field of every manifest kind that names
// content, schema 1's fsLayers included.
type storedManifest struct {
	Config    *linkDescriptor  `json:"config"`
	Layers    []linkDescriptor `json:"layers"`
	Manifests []linkDescriptor `json:"manifests"`
	Subject   *linkDescriptor  `json:"subject"`
	FSLayers  []struct {
		BlobSum digest.Digest `json:"blobSum"`
	} `json:"fsLayers"`
}

// linkDescriptor is the part of a descriptor ParseManifestLinks reads.
type linkDescriptor struct {
	Digest digest.Digest `json:"digest"`
}

// ParseManifestLinks reads the links of manifest content already in
// storage. Unlike ParseManifest, which decides what a push may store, it
// takes any kind a registry may have written, schema 1 (which registryd
// refuses) included, and reads only the digests: fields it does not need
// are not checked, and a digest that is not valid is left out. The error
// is the JSON decoder's, for content that is no JSON object of that shape.
func ParseManifestLinks(content []byte) (ManifestLinks, error) {
	var m storedManifest
	if err := json.Unmarshal(content, &m); err != nil {
		return ManifestLinks{}, err
	}
	var l ManifestLinks
	add := func(list *[]digest.Digest, d digest.Digest) {
		if d.Validate() == nil {
			*list = append(*list, d)
		}
	}
	if m.Config != nil {
		add(&l.Blobs, m.Config.Digest)
	}
	for _, d := range m.Layers {
		add(&l.Blobs, d.Digest)
	}
	for _, d := range m.FSLayers {
		add(&l.Blobs, d.BlobSum)
	}
	for _, d := range m.Manifests {
		add(&l.Children, d.Digest)
	}
	if m.Subject != nil && m.Subject.Digest.Validate() == nil {
		l.Subject = m.Subject.Digest
	}
	return l, nil
}

// References returns the descriptors that must exist for the manifest to
// be complete: config and layers of a manifest, children of an index. The
// subject is not among them: it may be pushed after its referrers.
func (m *Manifest) References() []v1.Descriptor {
	var out []v1.Descriptor
	if m.Config != nil {
		out = append(out, *m.Config)
	}
	out = append(out, m.Layers...)
	return append(out, m.Manifests...)
}
