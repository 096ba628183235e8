// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title StEthLike
/// @notice The ratio provider behind the wstETH price: `getPooledEthByShares(1e18)` is the live
///         stETH-per-wstETH exchange rate (18 decimals). The rate is settable so a scenario can
///         move it, as staking rewards do on mainnet.
contract StEthLike {
  uint256 public shareRate; // stETH per share, 18 decimals
  address public owner;

  event ShareRateUpdated(uint256 oldRate, uint256 newRate);

  constructor(uint256 initialRate) {
    owner = msg.sender;
    shareRate = initialRate;
  }

  function setShareRate(uint256 newRate) external {
    require(msg.sender == owner, 'only owner');
    emit ShareRateUpdated(shareRate, newRate);
    shareRate = newRate;
  }

  function getPooledEthByShares(uint256 sharesAmount) external view returns (uint256) {
    return (sharesAmount * shareRate) / 1e18;
  }

  function getSharesByPooledEth(uint256 ethAmount) external view returns (uint256) {
    return (ethAmount * 1e18) / shareRate;
  }
}
