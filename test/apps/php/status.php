<?php
switch ($_GET['case'] ?? '') {
  case 'notfound': http_response_code(404); header('X-Why: missing'); echo "nope"; break;
  case 'location': header('Location: /there'); break;
  case 'moved': header('Location: http://example.com/new', true, 301); break;
  case 'teapot': header('Status: 418 I Am A Teapot'); echo "short and stout"; break;
  case 'cookies': setcookie('a', '1'); setcookie('b', '2'); echo "two cookies"; break;
  case 'stderr': error_log('marker-from-php ' . ($_GET['n'] ?? '')); echo "logged"; break;
  case 'big': header('Content-Type: application/octet-stream'); for ($i = 0; $i < 256; $i++) echo str_repeat(chr(65 + $i % 26), 16384); break;
  case 'sleep': sleep(5); echo "late"; break;
}
