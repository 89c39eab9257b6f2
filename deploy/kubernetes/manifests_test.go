// Package kubernetes holds the Kubernetes manifests of an iqengine cluster
// (see the README, "Deploying on Kubernetes") and their test: every manifest
// decodes strictly into the Kubernetes API types, and what the manifests say
// about the node (its ports, probes, environment, configuration file, memory
// and shutdown) agrees with the node as this repository builds it.
package kubernetes

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/iqengine/iqengine/config"
	"github.com/iqengine/iqengine/internal/store"
)

// namespace is the namespace the tests deploy the manifests to: they name
// none, so that kubectl's -n (or kustomize's namespace:) chooses.
const namespace = "iqengine-test"

// manifests are the objects of this directory.
type manifests struct {
	sts       *appsv1.StatefulSet
	headless  *corev1.Service // the one with clusterIP: None
	client    *corev1.Service
	pdb       *policyv1.PodDisruptionBudget
	configMap *corev1.ConfigMap
	kust      kustomization
	files     []string // the manifest files, kustomization.yaml aside
}

// kustomization is the part of kustomize's Kustomization these manifests
// use; strict decoding makes any other field fail the test, so that a field
// added here is one the test knows about.
type kustomization struct {
	APIVersion string           `json:"apiVersion"`
	Kind       string           `json:"kind"`
	Namespace  string           `json:"namespace,omitempty"`
	Resources  []string         `json:"resources"`
	Images     []kustomizeImage `json:"images"`
}

// kustomizeImage renames an image the manifests name.
type kustomizeImage struct {
	Name    string `json:"name"`
	NewName string `json:"newName,omitempty"`
	NewTag  string `json:"newTag,omitempty"`
}

// decodeStrict decodes one YAML object as the API server does when asked to
// validate fields strictly: an unknown field, a field spelt in another case,
// or a field given twice is an error.
func decodeStrict(data []byte, v any) error {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return err
	}
	strict, err := sigsjson.UnmarshalStrict(js, v)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// docSeparator starts a YAML document after the first.
var docSeparator = regexp.MustCompile(`(?m)^---`)

// decodeObject decodes a manifest into the API type its apiVersion and
// kind name.
func decodeObject(data []byte) (any, error) {
	if docSeparator.Match(bytes.TrimPrefix(data, []byte("---\n"))) {
		return nil, fmt.Errorf("more than one object: keep one a file, so that each is decoded")
	}
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(data, &tm); err != nil {
		return nil, err
	}
	var obj any
	switch tm.APIVersion + " " + tm.Kind {
	case "apps/v1 StatefulSet":
		obj = &appsv1.StatefulSet{}
	case "v1 Service":
		obj = &corev1.Service{}
	case "policy/v1 PodDisruptionBudget":
		obj = &policyv1.PodDisruptionBudget{}
	case "v1 ConfigMap":
		obj = &corev1.ConfigMap{}
	default:
		return nil, fmt.Errorf("apiVersion %q kind %q: not a kind this test knows", tm.APIVersion, tm.Kind)
	}
	return obj, decodeStrict(data, obj)
}

// load decodes every YAML file of this directory.
func load(t *testing.T) *manifests {
	t.Helper()
	names, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := &manifests{}
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if name == "kustomization.yaml" {
			if err := decodeStrict(data, &m.kust); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			continue
		}
		m.files = append(m.files, name)
		obj, err := decodeObject(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		switch o := obj.(type) {
		case *appsv1.StatefulSet:
			once(t, name, &m.sts, o)
		case *corev1.Service:
			if o.Spec.ClusterIP == corev1.ClusterIPNone {
				once(t, name, &m.headless, o)
			} else {
				once(t, name, &m.client, o)
			}
		case *policyv1.PodDisruptionBudget:
			once(t, name, &m.pdb, o)
		case *corev1.ConfigMap:
			once(t, name, &m.configMap, o)
		}
	}
	if m.sts == nil || m.headless == nil || m.client == nil || m.pdb == nil || m.configMap == nil {
		t.Fatalf("want a StatefulSet, a headless and a client Service, a PodDisruptionBudget and a ConfigMap; got %+v", m)
	}
	return m
}

// once sets *dst to o, failing t when a manifest of that kind was seen.
func once[T any](t *testing.T, file string, dst **T, o *T) {
	t.Helper()
	if *dst != nil {
		t.Fatalf("%s: a second %T", file, o)
	}
	*dst = o
}

// container is the StatefulSet's iqengine container.
func (m *manifests) container(t *testing.T) *corev1.Container {
	t.Helper()
	cs := m.sts.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("the pod has %d containers, want the node alone", len(cs))
	}
	return &cs[0]
}

// containerPort resolves a Service's or probe's port (a number or a port
// name) to the container port it reaches, failing t when none matches.
func containerPort(t *testing.T, c *corev1.Container, port intstr.IntOrString, what string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if port.Type == intstr.String && p.Name == port.StrVal || port.Type == intstr.Int && p.ContainerPort == port.IntVal {
			return p.ContainerPort
		}
	}
	t.Fatalf("%s: port %s is none of the container's ports %+v", what, port.String(), c.Ports)
	return 0
}

// podNames are the names the StatefulSet gives its pods.
func (m *manifests) podNames(t *testing.T) []string {
	t.Helper()
	if m.sts.Spec.Replicas == nil {
		t.Fatal("the StatefulSet sets no replicas")
	}
	var names []string
	for i := range *m.sts.Spec.Replicas {
		names = append(names, fmt.Sprintf("%s-%d", m.sts.Name, i))
	}
	return names
}

// varRef is Kubernetes' reference to an earlier variable in an env value.
var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// podEnv is the environment Kubernetes gives the container of the pod
// named name: literal values with $(NAME) expanded from the variables listed
// before, the downward API's name and namespace, the ConfigMap's keys, and
// no Secret (none is shipped: a Secret reference must be optional). It also
// returns the variables that other values refer to.
func (m *manifests) podEnv(t *testing.T, name string) (env map[string]string, referenced map[string]bool) {
	t.Helper()
	c := m.container(t)
	if len(c.EnvFrom) > 0 {
		t.Fatal("envFrom: list each variable, so that the test can check it")
	}
	env, referenced = map[string]string{}, map[string]bool{}
	for _, v := range c.Env {
		if _, dup := env[v.Name]; dup {
			t.Fatalf("env %s is listed twice", v.Name)
		}
		switch src := v.ValueFrom; {
		case src == nil:
			env[v.Name] = varRef.ReplaceAllStringFunc(v.Value, func(ref string) string {
				earlier := varRef.FindStringSubmatch(ref)[1]
				val, ok := env[earlier]
				if !ok {
					t.Fatalf("env %s refers to $(%s), which is not listed before it: Kubernetes would leave the text as it is", v.Name, earlier)
				}
				referenced[earlier] = true
				return val
			})
		case src.FieldRef != nil:
			switch src.FieldRef.FieldPath {
			case "metadata.name":
				env[v.Name] = name
			case "metadata.namespace":
				env[v.Name] = namespace
			default:
				t.Fatalf("env %s: field %s is not one the test resolves", v.Name, src.FieldRef.FieldPath)
			}
		case src.ConfigMapKeyRef != nil:
			ref := src.ConfigMapKeyRef
			val, ok := m.configMap.Data[ref.Key]
			if ref.Name != m.configMap.Name || !ok {
				t.Fatalf("env %s: ConfigMap %s has no key %s", v.Name, ref.Name, ref.Key)
			}
			env[v.Name] = val
		case src.SecretKeyRef != nil:
			if src.SecretKeyRef.Optional == nil || !*src.SecretKeyRef.Optional {
				t.Fatalf("env %s: Secret %s is not shipped, so the reference must be optional", v.Name, src.SecretKeyRef.Name)
			}
		default:
			t.Fatalf("env %s: a source the test does not resolve", v.Name)
		}
	}
	return env, referenced
}

// configPath is the configuration file the container's command names, and
// the ConfigMap key that the config volume puts there.
func (m *manifests) configPath(t *testing.T) (file, key string) {
	t.Helper()
	c := m.container(t)
	if len(c.Command) > 0 || len(c.Args) != 3 || c.Args[0] != "serve" || c.Args[1] != "--config" {
		t.Fatalf("command %q args %q, want the image's entrypoint with serve --config FILE", c.Command, c.Args)
	}
	file = c.Args[2]
	dir, base := path.Split(file)
	mount := mountAt(t, c, path.Clean(dir))
	for _, vol := range m.sts.Spec.Template.Spec.Volumes {
		if vol.Name != mount.Name {
			continue
		}
		if vol.ConfigMap == nil || vol.ConfigMap.Name != m.configMap.Name {
			t.Fatalf("volume %s is not the ConfigMap %s", vol.Name, m.configMap.Name)
		}
		for _, it := range vol.ConfigMap.Items {
			if it.Path == base {
				key = it.Key
			}
		}
		if len(vol.ConfigMap.Items) == 0 {
			key = base
		}
	}
	if _, ok := m.configMap.Data[key]; key == "" || !ok {
		t.Fatalf("%s is not a file of the config volume", file)
	}
	return file, key
}

// mountAt is the container's volume mount at dir, failing t when none is.
func mountAt(t *testing.T, c *corev1.Container, dir string) corev1.VolumeMount {
	t.Helper()
	for _, vm := range c.VolumeMounts {
		if path.Clean(vm.MountPath) == dir {
			return vm
		}
	}
	t.Fatalf("nothing is mounted at %s (mounts: %+v)", dir, c.VolumeMounts)
	return corev1.VolumeMount{}
}

// pod is one pod of the StatefulSet, as the node in it sees it.
type pod struct {
	name string
	// cfg is the node's configuration, as serve builds it: the ConfigMap's
	// file, then the pod's environment, validated.
	cfg config.Config
	// env is the container's environment; referenced are the variables
	// other values of it are built from; read are those the configuration
	// asked the environment for.
	env              map[string]string
	referenced, read map[string]bool
}

// pod is the StatefulSet's i-th pod.
func (m *manifests) pod(t *testing.T, i int) pod {
	t.Helper()
	p := pod{name: m.podNames(t)[i], read: map[string]bool{}}
	_, key := m.configPath(t)
	file := filepath.Join(t.TempDir(), "iqengine.yaml")
	if err := os.WriteFile(file, []byte(m.configMap.Data[key]), 0o600); err != nil {
		t.Fatal(err)
	}
	var err error
	if p.cfg, err = config.Load(file); err != nil {
		t.Fatal(err)
	}
	p.env, p.referenced = m.podEnv(t, p.name)
	p.cfg.Env(func(name string) string {
		p.read[name] = true
		return p.env[name]
	})
	if err := p.cfg.Validate(); err != nil {
		t.Fatalf("pod %s: the node would refuse its configuration: %v", p.name, err)
	}
	return p
}

// The decoder refuses what the API server would refuse with strict field
// validation, so a typo in a manifest fails this test rather than being
// dropped by kubectl with a warning.
func TestDecodingIsStrict(t *testing.T) {
	good := "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: x}\nspec:\n  maxUnavailable: 1\n"
	if _, err := decodeObject([]byte(good)); err != nil {
		t.Fatalf("a valid manifest: %v", err)
	}
	for name, bad := range map[string]string{
		"an unknown field":        strings.Replace(good, "maxUnavailable", "maxUnavalable", 1),
		"a field in another case": strings.Replace(good, "maxUnavailable", "MaxUnavailable", 1),
		"a field twice":           good + "  maxUnavailable: 2\n",
		"an unknown kind":         strings.Replace(good, "PodDisruptionBudget", "PodDisruptionBudgett", 1),
		"two objects":             good + "---\n" + good,
	} {
		if _, err := decodeObject([]byte(bad)); err == nil {
			t.Errorf("%s was accepted", name)
		}
	}
}

// Every manifest decodes strictly, and kustomization.yaml deploys exactly
// them, replacing the StatefulSet's image placeholder.
func TestKustomizationListsEveryManifest(t *testing.T) {
	m := load(t)
	k := m.kust
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Fatalf("kustomization.yaml is %s %s", k.APIVersion, k.Kind)
	}
	if !slices.Equal(slices.Sorted(slices.Values(k.Resources)), m.files) {
		t.Errorf("resources %v, want every manifest of the directory: %v", k.Resources, m.files)
	}
	image := m.container(t).Image
	if !slices.ContainsFunc(k.Images, func(i kustomizeImage) bool { return i.Name == image && i.NewName != "" }) {
		t.Errorf("no images: entry renames the container's image %q, so the placeholder would be deployed", image)
	}
}

// Each pod's node takes its id from the pod's stable name and advertises
// the pod's name on the headless Service, at the port it listens on; every
// variable the pod sets is one the node (or the Go runtime) reads, or one
// another variable is built from.
func TestEachPodIsANodeNamedAfterIt(t *testing.T) {
	m := load(t)
	c := m.container(t)
	if m.sts.Spec.ServiceName != m.headless.Name {
		t.Fatalf("the StatefulSet's serviceName %q is not the headless Service %q: pods would get no DNS names", m.sts.Spec.ServiceName, m.headless.Name)
	}
	port := containerPort(t, c, intstr.FromString("http"), "the container")
	names := m.podNames(t)
	ids := map[string]bool{}
	for i, name := range names {
		p := m.pod(t, i)
		cfg := p.cfg
		if cfg.NodeID != name {
			t.Errorf("pod %s: node_id %q, want the pod's name", name, cfg.NodeID)
		}
		ids[cfg.NodeID] = true
		want := fmt.Sprintf("http://%s.%s.%s.svc.cluster.local:%d", name, m.headless.Name, namespace, port)
		if cfg.Advertise != want {
			t.Errorf("pod %s: advertise %q, want %q", name, cfg.Advertise, want)
		}
		if want := config.SplitBrokers(m.configMap.Data["brokers"]); !slices.Equal(cfg.Kafka.Brokers, want) {
			t.Errorf("pod %s: brokers %v, want the ConfigMap's %v", name, cfg.Kafka.Brokers, want)
		}
		for _, ev := range c.Env {
			switch v := ev.Name; {
			case strings.HasPrefix(v, "IQENGINE_"):
				if !p.read[v] {
					t.Errorf("env %s: the node does not read it", v)
				}
			case v == "GOMEMLIMIT":
				// Read by the Go runtime; TestMemoryFitsTheConfiguration checks it.
			case !p.referenced[v]:
				t.Errorf("env %s: neither the node nor another variable uses it", v)
			}
		}
	}
	if len(ids) != len(names) {
		t.Errorf("node ids %v are not one per pod", ids)
	}
}

// The node listens on every interface, at the container's port, and keeps
// everything it writes on the pod's volume: the root file system is read
// only.
func TestTheNodeListensAndWritesWhereThePodSays(t *testing.T) {
	m := load(t)
	c := m.container(t)
	cfg := m.pod(t, 0).cfg
	host, portText, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		t.Errorf("listen %q: the kubelet's probes and the other nodes connect to the pod's IP, so listen on 0.0.0.0", cfg.Listen)
	}
	if port := containerPort(t, c, intstr.FromString("http"), "the container"); portText != fmt.Sprint(port) {
		t.Errorf("listen %q is not the container port %d", cfg.Listen, port)
	}
	for _, svc := range []*corev1.Service{m.headless, m.client} {
		for _, p := range svc.Spec.Ports {
			containerPort(t, c, p.TargetPort, "Service "+svc.Name)
		}
	}

	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("container securityContext %+v: want a read-only root file system and no privilege escalation", sc)
	}
	if psc := m.sts.Spec.Template.Spec.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Errorf("pod securityContext %+v: want runAsNonRoot", psc)
	}

	if len(m.sts.Spec.VolumeClaimTemplates) != 1 {
		t.Fatalf("%d volumeClaimTemplates, want the node's data volume", len(m.sts.Spec.VolumeClaimTemplates))
	}
	claim := m.sts.Spec.VolumeClaimTemplates[0]
	data := mountAt(t, c, path.Clean(cfg.DataDir))
	if data.Name != claim.Name || data.ReadOnly {
		t.Errorf("data_dir %s is on volume %s, want the pod's own writable volume %s", cfg.DataDir, data.Name, claim.Name)
	}
	// The plugin cache is the node's other writable directory.
	if rel, err := filepath.Rel(cfg.DataDir, cfg.Plugins.CacheDir); err != nil || strings.HasPrefix(rel, "..") {
		t.Errorf("plugins.cache_dir %s is outside the data volume %s, on the read-only root", cfg.Plugins.CacheDir, cfg.DataDir)
	}
	size := claim.Spec.Resources.Requests[corev1.ResourceStorage]
	if size.Value() <= int64(cfg.Storage.MinFreeSpace) {
		t.Errorf("the data volume (%s) is no larger than storage.min_free_space (%s): the node would take itself out", size.String(), cfg.Storage.MinFreeSpace)
	}
	if file, _ := m.configPath(t); !mountAt(t, c, path.Dir(file)).ReadOnly {
		t.Errorf("the config volume is writable")
	}
}

// runtimeHeadroom is what a node uses beyond the memory its configuration
// sizes: the Go runtime, Kafka fetch buffers (franz-go's 50 MiB fetch
// responses) and HTTP answers being built.
const runtimeHeadroom = 256 << 20

// The container's memory covers what the configuration lets the node
// hold: the block cache, the memtables, the plugins' memories, and the
// runtime's headroom; GOMEMLIMIT covers it too and stays under the limit.
func TestMemoryFitsTheConfiguration(t *testing.T) {
	m := load(t)
	c := m.container(t)
	p := m.pod(t, 0)
	cfg, env := p.cfg, p.env
	limits, requests := c.Resources.Limits, c.Resources.Requests
	memLimit, cpuLimit := limits[corev1.ResourceMemory], limits[corev1.ResourceCPU]
	if memLimit.IsZero() {
		t.Fatal("no memory limit")
	}
	if req := requests[corev1.ResourceMemory]; req.Cmp(memLimit) != 0 {
		t.Errorf("memory requests %s != limits %s: the node's memory is bounded by its configuration, so ask for all of it", req.String(), memLimit.String())
	}
	instances := int64(cfg.Plugins.Instances)
	if instances == 0 {
		// Each module's pool is GOMAXPROCS instances, which is the CPU
		// limit rounded up.
		if cpuLimit.IsZero() {
			t.Fatal("plugins.instances is 0 (GOMAXPROCS) and there is no CPU limit: the plugins' memory would follow the Kubernetes node's CPU count")
		}
		instances = cpuLimit.MilliValue()/1000 + min(cpuLimit.MilliValue()%1000, 1)
	}
	var uses int64 // plugin uses: each loads at most one module
	for _, s := range cfg.Stores {
		for _, used := range []bool{s.Key.Wasm != "", s.Value.Wasm != "", s.Transform != nil} {
			if used {
				uses++
			}
		}
	}
	need := int64(cfg.Storage.CacheSize) + store.MaxMemTables*int64(cfg.Storage.MemTableSize) +
		uses*instances*int64(cfg.Plugins.MemoryLimit) + runtimeHeadroom
	goLimit, err := config.ParseSize(env["GOMEMLIMIT"])
	if err != nil || !regexp.MustCompile(`^[0-9]+(B|KiB|MiB|GiB|TiB)?$`).MatchString(env["GOMEMLIMIT"]) {
		t.Fatalf("GOMEMLIMIT %q is not a size the Go runtime reads", env["GOMEMLIMIT"])
	}
	if int64(goLimit) < need || int64(goLimit) >= memLimit.Value() {
		t.Errorf("GOMEMLIMIT %s must lie between what the configuration needs, %s, and the memory limit %s",
			goLimit, config.Size(need), memLimit.String())
	}
	if memLimit.Value() < need {
		t.Errorf("memory limit %s is under what the configuration needs, %s", memLimit.String(), config.Size(need))
	}
}

// The probes ask the node's health endpoints at the port it listens on;
// the startup probe gives the node time to check Kafka and join its group.
// (TestProbesAnswerOnANode asks a running node.)
func TestProbesNameTheNodesEndpoints(t *testing.T) {
	m := load(t)
	c := m.container(t)
	cfg := m.pod(t, 0).cfg
	_, listenPort, _ := net.SplitHostPort(cfg.Listen)
	for what, want := range map[string]struct {
		probe *corev1.Probe
		path  string
	}{
		"startupProbe":   {c.StartupProbe, "/healthz"},
		"livenessProbe":  {c.LivenessProbe, "/healthz"},
		"readinessProbe": {c.ReadinessProbe, "/readyz"},
	} {
		p := want.probe
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s: want an HTTP GET of %s", what, want.path)
			continue
		}
		if p.HTTPGet.Path != want.path {
			t.Errorf("%s asks %s, want %s", what, p.HTTPGet.Path, want.path)
		}
		if port := containerPort(t, c, p.HTTPGet.Port, what); fmt.Sprint(port) != listenPort {
			t.Errorf("%s asks port %d; the node listens on %s", what, port, cfg.Listen)
		}
	}
	if s := c.StartupProbe; s != nil {
		window := int64(s.PeriodSeconds) * int64(s.FailureThreshold)
		// Start checks the brokers, then joins the group, each within
		// kafka.startup_timeout, before it serves HTTP.
		if need := 2 * cfg.Kafka.StartupTimeout.D(); window < int64(need.Seconds()) {
			t.Errorf("the startup probe gives the node %ds; starting may take %s", window, need)
		}
	}
}

// Pods are started together, one may be disrupted at a time, and both
// Services and the budget select the StatefulSet's pods.
func TestTheClusterShape(t *testing.T) {
	m := load(t)
	if *m.sts.Spec.Replicas != 3 {
		t.Errorf("%d replicas, want 3", *m.sts.Spec.Replicas)
	}
	if m.sts.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Errorf("podManagementPolicy %q: with OrderedReady the first pod restores every partition before the next starts", m.sts.Spec.PodManagementPolicy)
	}
	if !m.headless.Spec.PublishNotReadyAddresses {
		t.Error("the headless Service must publish pods that are not ready: peers forward to them while they restore and leave")
	}
	if mu := m.pdb.Spec.MaxUnavailable; mu == nil || *mu != intstr.FromInt32(1) {
		t.Errorf("PodDisruptionBudget maxUnavailable %v, want 1", mu)
	}
	podLabels := labels.Set(m.sts.Spec.Template.Labels)
	selects := func(what string, sel *metav1.LabelSelector) {
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil || s.Empty() || !s.Matches(podLabels) {
			t.Errorf("%s selects %v, not the pods %v (%v)", what, sel, podLabels, err)
		}
	}
	selects("the StatefulSet", m.sts.Spec.Selector)
	selects("the PodDisruptionBudget", m.pdb.Spec.Selector)
	for _, svc := range []*corev1.Service{m.headless, m.client} {
		selects("Service "+svc.Name, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector})
	}
}
