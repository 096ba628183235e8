// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {ERC20} from '@openzeppelin/contracts/token/ERC20/ERC20.sol';

interface IStEthRate {
  function getPooledEthByShares(uint256 sharesAmount) external view returns (uint256);
}

/// @title WstEthLike
/// @notice A wstETH-like token (18 decimals) whose `stEthPerToken()` reads the ratio provider.
///         Mintable by anyone: it is test collateral, not a wrapper.
contract WstEthLike is ERC20 {
  IStEthRate public immutable stETH;

  constructor(address stEth) ERC20('Wrapped liquid staked Ether 2.0 (devchain)', 'wstETH') {
    stETH = IStEthRate(stEth);
  }

  function stEthPerToken() external view returns (uint256) {
    return stETH.getPooledEthByShares(1 ether);
  }

  function mint(address to, uint256 amount) external {
    _mint(to, amount);
  }
}
