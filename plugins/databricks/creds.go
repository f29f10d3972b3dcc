package databricks

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/databricks/databricks-sdk-go/config"
)

// credentialsMissing reports whether the target's workspace surely has no
// credentials: a host is configured but neither the environment nor the
// profile holds any way to authenticate. It reads only the environment and
// ~/.databrickscfg (no network), and stays silent when a login the SDK can
// find by itself may exist (the Databricks CLI's token cache, the Azure
// CLI). host is the workspace it found ("" when none is configured).
func credentialsMissing(c *Config, env Env) (host string, missing bool) {
	cfg := &config.Config{Host: c.Host, Profile: c.Profile}
	if env.get("DATABRICKS_CONFIG_FILE") == "" && env.get("HOME") != "" {
		cfg.ConfigFile = filepath.Join(env.get("HOME"), ".databrickscfg")
	}
	if err := (envLoader{env}).Configure(cfg); err != nil {
		return "", false
	}
	if err := config.ConfigFile.Configure(cfg); err != nil {
		return "", false // a broken profile: the SDK's own error says more
	}
	if cfg.Host == "" {
		return "", false // no workspace: Validate says so
	}
	for _, v := range []string{cfg.Token, cfg.Password, cfg.ClientID, cfg.ClientSecret, cfg.AuthType, cfg.AzureClientSecret,
		cfg.AzureClientID, cfg.GoogleServiceAccount, cfg.GoogleCredentials, cfg.MetadataServiceURL, cfg.OIDCTokenFilepath,
		cfg.OIDCTokenEnv} {
		if v != "" {
			return cfg.Host, false
		}
	}
	if cfg.AzureUseMSI {
		return cfg.Host, false
	}
	home := env.get("HOME")
	if home != "" {
		if _, err := os.Stat(filepath.Join(home, ".databricks", "token-cache.json")); err == nil {
			return cfg.Host, false // databricks auth login
		}
	}
	if strings.Contains(cfg.Host, ".azuredatabricks.net") {
		if _, err := exec.LookPath("az"); err == nil {
			return cfg.Host, false // az login
		}
	}
	return cfg.Host, true
}
