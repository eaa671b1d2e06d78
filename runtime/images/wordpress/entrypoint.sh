#!/bin/sh
# Configure Debian's WordPress from the official image's variables, for any host name it is reached by.
set -e
cat > /etc/wordpress/config-default.php <<PHP
<?php
define('DB_NAME', '${WORDPRESS_DB_NAME:-wordpress}');
define('DB_USER', '${WORDPRESS_DB_USER:-root}');
define('DB_PASSWORD', '${WORDPRESS_DB_PASSWORD:-}');
define('DB_HOST', '${WORDPRESS_DB_HOST:-mysql}');
define('WP_CONTENT_DIR', '/var/lib/wordpress/wp-content');
\$table_prefix = '${WORDPRESS_TABLE_PREFIX:-wp_}';
PHP
# Debian's wp-config.php looks for config-<host>.php; every host name falls back to the default file.
sed -i "s#^\\(\\s*\\)\\\$debian_file = .*#\\1\\\$debian_file = '/etc/wordpress/config-default.php';#" /etc/wordpress/wp-config.php 2>/dev/null || true
grep -q config-default /usr/share/wordpress/wp-config.php 2>/dev/null || \
  printf "<?php\nrequire_once('/etc/wordpress/config-default.php');\nif (!defined('ABSPATH')) define('ABSPATH', '/usr/share/wordpress/');\nrequire_once(ABSPATH . 'wp-settings.php');\n" > /usr/share/wordpress/wp-config.php
exec "$@"
