//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berth-dev/berth/api/v1alpha1"
)

// A retention policy on the real cluster: a dry run made by hand reports
// exactly the tags the policy would delete and deletes nothing; the
// Registry's schedule then prunes them and frees what only they held.
var _ = Describe("Retention", Ordered, func() {
	BeforeAll(func() { installWithKustomize() })

	It("prunes the tags a Registry's policy does not keep, after a dry run that lists them", func() {
		rules := []berthv1alpha1.RetentionRule{
			// Every semver tag and the two newest other tags of ci/**.
			{Repositories: []berthv1alpha1.RepositoryGlob{"ci/**"}, KeepTags: []berthv1alpha1.TagPattern{`v?[0-9]+\.[0-9]+\.[0-9]+`},
				KeepMostRecentlyPushed: ptr.To[int32](2)},
			// Nightly tags younger than 14 days anywhere else.
			{Repositories: []berthv1alpha1.RepositoryGlob{"**"}, PruneTags: []berthv1alpha1.TagPattern{"nightly-.*"},
				KeepPushedWithin: &berthv1alpha1.Duration{Duration: 336 * time.Hour}},
		}
		s := newGCScenario(1, corev1.ReadWriteOnce, &berthv1alpha1.GarbageCollectionPolicy{
			Schedule: "0 0 1 1 *", GracePeriod: &berthv1alpha1.Duration{}, Timeout: &berthv1alpha1.Duration{Duration: 10 * time.Minute},
			Retention: rules,
		}, false)
		Eventually(func() error {
			return k8sClient.Get(suiteCtx, types.NamespacedName{Namespace: s.ns, Name: s.reg + "-gc"}, &batchv1.CronJob{})
		}).WithTimeout(readyTimeout).WithPolling(poll).Should(Succeed(), "the schedule's CronJob")

		By("pushing five CI builds and a release to ci/app, a nightly and latest to web")
		images := map[string]v1.Image{}
		var pushOrder []string
		push := func(repo, tag string) {
			img, err := random.Image(512<<10, 2)
			Expect(err).NotTo(HaveOccurred())
			Expect(remote.Write(s.ref(repo, tag), img, s.opts...)).To(Succeed())
			images[repo+":"+tag] = img
			pushOrder = append(pushOrder, repo+":"+tag)
		}
		push("ci/app", "v1.2.3")
		for _, b := range []string{"b1", "b2", "b3", "b4", "b5"} {
			push("ci/app", b)
		}
		push("web", "nightly-1")
		push("web", "latest")
		pruned := []string{"ci/app:b1", "ci/app:b2", "ci/app:b3"}

		By("a dry run created by hand with the same rules: it reports exactly those tags and deletes nothing")
		rulesJSON, err := json.Marshal(rules)
		Expect(err).NotTo(HaveOccurred())
		runWithInput(fmt.Sprintf(`{"apiVersion":"berth.dev/v1alpha1","kind":"GarbageCollection",
"metadata":{"name":"dry","namespace":%q},
"spec":{"registryName":%q,"dryRun":true,"gracePeriod":"0s","retention":%s}}`, s.ns, s.reg, rulesJSON), kubectl, "create", "-f", "-")
		dry := waitRun(s, "dry")
		Expect(dry.Status.Summary.Retention).To(Equal(&berthv1alpha1.RetentionSummary{TagsDeleted: 3, Repositories: 2,
			ByRepository: []berthv1alpha1.RepositoryTagsDeleted{{Repository: "ci/app", TagsDeleted: 3}}}))
		Expect(dry.Status.Message).To(HavePrefix("Dry run: would delete 3 tags"))
		Expect(collectorTags(s, "dry")).To(Equal(pruned), "the tags the dry run lists in its collector's log")
		for _, rt := range pushOrder {
			repo, tag, _ := strings.Cut(rt, ":")
			expectSameImage(images[rt], s.ref(repo, tag), s.opts...)
		}

		By("running the schedule now: the run carries the Registry's rules")
		run(kubectl, "-n", s.ns, "create", "job", "--from=cronjob/"+s.reg+"-gc", "on-demand")
		gc := waitRun(s, "on-demand")
		Expect(gc.Spec.Retention).To(Equal(rules))
		asYAML := output(kubectl, "-n", s.ns, "get", "gc", "on-demand", "-o", "yaml")
		Expect(asYAML).To(ContainSubstring("keepMostRecentlyPushed: 2"))
		Expect(asYAML).To(ContainSubstring("nightly-.*"))

		sum := gc.Status.Summary
		Expect(sum.Retention).To(Equal(dry.Status.Summary.Retention), "the run deletes what the dry run reported")
		Expect(collectorTags(s, "on-demand")).To(Equal(pruned))
		// Each pruned build held a manifest, a config and two layers of
		// 512 KiB that nothing else references.
		Expect(sum.BytesFreed).To(BeNumerically(">=", 3*2*512<<10), "bytes freed")
		Expect(sum.ManifestsDeleted).To(BeNumerically("==", 3))
		Expect(sum.BlobsDeleted).To(BeNumerically("==", 3*4))

		By("the kept tags pull byte for byte, the pruned ones are gone with their blobs")
		for _, rt := range pushOrder {
			repo, tag, _ := strings.Cut(rt, ":")
			if !slices.Contains(pruned, rt) {
				expectSameImage(images[rt], s.ref(repo, tag), s.opts...)
				continue
			}
			_, err := remote.Head(s.ref(repo, tag), s.opts...)
			var terr *transport.Error
			Expect(err).To(BeAssignableToTypeOf(terr), "%s still answers", rt)
			Expect(err.(*transport.Error).StatusCode).To(Equal(http.StatusNotFound), "%s", rt)
			layers, err := images[rt].Layers()
			Expect(err).NotTo(HaveOccurred())
			for _, l := range layers {
				d, err := l.Digest()
				Expect(err).NotTo(HaveOccurred())
				resp, err := s.client.Head(s.scheme + "://" + s.host + "/v2/" + repo + "/blobs/" + d.String())
				Expect(err).NotTo(HaveOccurred())
				resp.Body.Close()
				Expect(resp.StatusCode).To(Equal(http.StatusNotFound), "layer %s of %s still answers", d, rt)
			}
		}

		reg := &berthv1alpha1.Registry{}
		Expect(k8sClient.Get(suiteCtx, types.NamespacedName{Namespace: s.ns, Name: s.reg}, reg)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(suiteCtx, types.NamespacedName{Namespace: s.ns, Name: s.reg}, reg)).To(Succeed())
			g.Expect(reg.Status.LastGarbageCollection).NotTo(BeNil())
			g.Expect(reg.Status.LastGarbageCollection.Name).To(Equal("on-demand"))
			g.Expect(reg.Status.LastGarbageCollection.TagsDeleted).To(Equal(int64(3)))
		}).WithTimeout(time.Minute).WithPolling(poll).Should(Succeed())

		o := gc.Status.WriteOutage
		report := fmt.Sprintf("retention run on-demand: %d tags pruned (%v), freed %s (%d bytes, %d blobs, %d manifests), collector %s, write outage %s, run %s",
			sum.Retention.TagsDeleted, pruned, sum.Freed, sum.BytesFreed, sum.BlobsDeleted, sum.ManifestsDeleted, sum.Duration, o.Duration, gc.Status.Duration)
		AddReportEntry("retention", report)
		fmt.Fprintln(GinkgoWriter, report)
		fmt.Fprintln(GinkgoWriter, output(kubectl, "-n", s.ns, "get", "garbagecollections,registries"))
	})
})

// waitRun waits for run name of s to succeed.
func waitRun(s *gcScenario, name string) *berthv1alpha1.GarbageCollection {
	GinkgoHelper()
	gc := &berthv1alpha1.GarbageCollection{}
	Eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(suiteCtx, types.NamespacedName{Namespace: s.ns, Name: name}, gc)).To(Succeed())
		g.Expect(gc.Status.Phase).NotTo(Equal(berthv1alpha1.GCFailed), "run failed: %s: %s", gc.Status.Reason, gc.Status.Message)
		g.Expect(gc.Status.Phase).To(Equal(berthv1alpha1.GCSucceeded))
	}).WithTimeout(5*time.Minute).WithPolling(poll).Should(Succeed(), "GarbageCollection "+name)
	Expect(gc.Status.Summary).NotTo(BeNil())
	Expect(gc.Status.Summary.Retention).NotTo(BeNil())
	Expect(gc.Status.WriteOutage).NotTo(BeNil())
	return gc
}

// collectorTags are the tags run name's collector says it deleted (or, in
// a dry run, would delete), as repository:tag: its --json summary in the
// Job's log lists them all.
func collectorTags(s *gcScenario, name string) []string {
	GinkgoHelper()
	logs := output(kubectl, "-n", s.ns, "logs", "job/"+name+"-collect")
	for _, line := range strings.Split(logs, "\n") {
		var sum struct {
			Deleted *struct {
				Tags []struct{ Repository, Tag string } `json:"tags"`
			} `json:"deleted"`
		}
		if json.Unmarshal([]byte(line), &sum) != nil || sum.Deleted == nil {
			continue // a log line, not the summary
		}
		out := []string{}
		for _, t := range sum.Deleted.Tags {
			out = append(out, t.Repository+":"+t.Tag)
		}
		return out
	}
	Fail("no summary in the collector's log:\n" + logs)
	return nil
}
