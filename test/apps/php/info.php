<?php
header('Content-Type: application/json');
$keys = ['SCRIPT_NAME', 'PATH_INFO', 'SCRIPT_FILENAME', 'DOCUMENT_ROOT', 'QUERY_STRING', 'REQUEST_URI', 'DOCUMENT_URI',
  'REQUEST_METHOD', 'SERVER_PROTOCOL', 'GATEWAY_INTERFACE', 'SERVER_SOFTWARE', 'REMOTE_ADDR', 'REMOTE_PORT', 'SERVER_ADDR',
  'SERVER_PORT', 'SERVER_NAME', 'REQUEST_SCHEME', 'HTTPS', 'HTTP_HOST', 'HTTP_X_CUSTOM', 'HTTP_COOKIE', 'CONTENT_TYPE',
  'CONTENT_LENGTH', 'HTTP_X_FORWARDED_FOR', 'APP_ENV', 'PHP_SELF'];
$out = [];
foreach ($keys as $k) $out[$k] = $_SERVER[$k] ?? null;
$out['get'] = $_GET;
echo json_encode($out);
