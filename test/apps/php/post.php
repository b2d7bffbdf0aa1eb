<?php
header('Content-Type: application/json');
$raw = file_get_contents('php://input');
echo json_encode(['post' => $_POST, 'length' => strlen($raw), 'md5' => md5($raw), 'files' => array_map(fn($f) => ['size' => $f['size'], 'md5' => md5_file($f['tmp_name'])], $_FILES)]);
