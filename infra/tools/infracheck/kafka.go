package main

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	"github.com/kedacore/keda/v2/pkg/scalers/scalersconfig"
)

// kafkaTriggerMetadata mirrors the trigger-metadata fields of KEDA's kafka scaler
// (pkg/scalers/kafka_scaler.go, kafkaMetadata, KEDA v2.21): KEDA's own typed-config
// parser checks them (required keys, integers, booleans, enums). Auth-only parameters
// (username, password, certificates) come from a TriggerAuthentication and are left out.
type kafkaTriggerMetadata struct {
	BootstrapServers                   []string `keda:"name=bootstrapServers,order=triggerMetadata;resolvedEnv"`
	ConsumerGroup                      string   `keda:"name=consumerGroup,order=triggerMetadata;resolvedEnv"`
	Topic                              string   `keda:"name=topic,order=triggerMetadata;resolvedEnv,optional"`
	PartitionLimitation                string   `keda:"name=partitionLimitation,order=triggerMetadata,optional"`
	LagThreshold                       int64    `keda:"name=lagThreshold,order=triggerMetadata,default=10"`
	ActivationLagThreshold             int64    `keda:"name=activationLagThreshold,order=triggerMetadata,default=0"`
	OffsetResetPolicy                  string   `keda:"name=offsetResetPolicy,order=triggerMetadata,default=latest,enum=latest;earliest"`
	AllowIdleConsumers                 bool     `keda:"name=allowIdleConsumers,order=triggerMetadata,default=false"`
	ExcludePersistentLag               bool     `keda:"name=excludePersistentLag,order=triggerMetadata,default=false"`
	ScaleToZeroOnInvalidOffset         bool     `keda:"name=scaleToZeroOnInvalidOffset,order=triggerMetadata,default=false"`
	LimitToPartitionsWithLag           bool     `keda:"name=limitToPartitionsWithLag,order=triggerMetadata,default=false"`
	EnsureEvenDistributionOfPartitions bool     `keda:"name=ensureEvenDistributionOfPartitions,order=triggerMetadata,default=false"`
	FullMetadata                       bool     `keda:"name=fullMetadata,order=triggerMetadata,default=true"`
	Version                            string   `keda:"name=version,order=triggerMetadata,optional"`
	TLS                                string   `keda:"name=tls,order=triggerMetadata;authParams,default=disable,enum=enable;disable"`
	UnsafeSsl                          bool     `keda:"name=unsafeSsl,order=triggerMetadata,default=false"`
	Sasl                               string   `keda:"name=sasl,order=triggerMetadata;authParams,optional,enum=none;plaintext;scram_sha256;scram_sha512;oauthbearer;gssapi"`
	SaslTokenProvider                  string   `keda:"name=saslTokenProvider,order=triggerMetadata;authParams,optional,enum=bearer;aws_msk_iam"`
	AWSRegion                          string   `keda:"name=awsRegion,order=triggerMetadata,optional"`

	TriggerIndex int // required by TypedConfig
}

func kafkaMetadataKeys() map[string]bool {
	keys := map[string]bool{}
	t := reflect.TypeOf(kafkaTriggerMetadata{})
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("keda")
		name := strings.TrimPrefix(strings.SplitN(tag, ",", 2)[0], "name=")
		keys[name] = true
	}
	return keys
}

func checkKafkaTrigger(t kedav1alpha1.ScaleTriggers) error {
	known := kafkaMetadataKeys()
	var unknown []string
	for key := range t.Metadata {
		if !known[key] {
			unknown = append(unknown, key)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("kafka trigger: unknown metadata keys %v", unknown)
	}
	config := scalersconfig.ScalerConfig{
		TriggerType:     t.Type,
		TriggerMetadata: t.Metadata,
		ResolvedEnv:     map[string]string{},
		AuthParams:      map[string]string{},
	}
	var md kafkaTriggerMetadata
	if err := config.TypedConfig(&md); err != nil {
		return fmt.Errorf("kafka trigger: %w", err)
	}
	if md.LagThreshold <= 0 {
		return fmt.Errorf("kafka trigger: lagThreshold must be positive, got %d", md.LagThreshold)
	}
	if md.ActivationLagThreshold < 0 {
		return fmt.Errorf("kafka trigger: activationLagThreshold must not be negative")
	}
	return nil
}
